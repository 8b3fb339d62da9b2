"""envnet: city environmental sensor networks. This package is the top floor: the `envnet`
command (`cli`), its subcommands (`commands/`), and the live demo (`demo`, `demo_view`).

Nothing below imports it; it may import every other package.
"""

from schemas.runtime.version import VERSION

__all__ = ["cli", "commands", "demo"]
__version__ = VERSION
