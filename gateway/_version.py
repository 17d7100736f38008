"""The gateway's version, read from its package metadata: pyproject.toml is the one source."""

from importlib.metadata import PackageNotFoundError, version

__all__ = ["__version__"]

try:
    __version__ = version("gateway")
except PackageNotFoundError:  # pragma: no cover - a checkout imported without installing it
    __version__ = "0+unknown"
