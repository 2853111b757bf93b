"""gpumarket's world: cost core, chip catalog, market clearing, export controls and the Mesa model."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("gpumarket")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
