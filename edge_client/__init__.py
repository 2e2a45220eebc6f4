"""EdgePrune's device side: poll, download, verify, swap, benchmark and report (see cli.py).

Imports only onnxruntime, httpx, numpy, typer/rich and the standard library, so it
installs in seconds on a device without torch (`pip install "edgeprune[edge]"`).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("edgeprune")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
