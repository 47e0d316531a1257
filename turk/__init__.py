"""turk: curate small, certified, high-precision labeled image datasets.

The application package: the command line, the ledger (one SQLite file holding all
state), the crowd backends and the local MTurk-compatible sandbox. The libraries it
wires together live beside it: ``retrieval`` (collections, time buckets, CLIP
embeddings, ranking) and ``analysis`` (aggregation, worker quality, certification,
reports, export).
"""

__version__ = "0.1.0"
"""turk's version; pyproject.toml reads it from here (a literal: no metadata lookup)."""

__all__ = ["__version__"]
