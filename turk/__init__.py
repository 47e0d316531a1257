"""turk: curate small, certified, high-precision labeled image datasets.

The application package: the command line, the ledger (one SQLite file holding all
state), the crowd backends and the local MTurk-compatible sandbox. The libraries it
wires together live beside it: ``retrieval`` (collections, time buckets, CLIP
embeddings, ranking) and ``analysis`` (aggregation, worker quality, certification,
reports, export).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("turk")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
