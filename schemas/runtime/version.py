"""The installed envnet version, for status messages and `envnet --version`."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Final


def _installed() -> str:
    try:
        return version("envnet")
    except PackageNotFoundError:  # running from a checkout without an install
        return "0.0.0+checkout"


VERSION: Final = _installed()
