"""envnet: city environmental sensor networks. This package is the top floor: the `envnet`
command (`cli`), its subcommands (`commands/`), and the live demo (`demo`)."""

from schemas.runtime.version import VERSION

__version__ = VERSION
