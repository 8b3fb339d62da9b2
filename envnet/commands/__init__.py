"""The `envnet` subcommands, one module each, imported only when their command runs."""
