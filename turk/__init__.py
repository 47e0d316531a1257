"""turk: curate small, certified, high-precision labeled image datasets.

The application package: the command line, the ledger (one SQLite file holding all
state), the crowd backends and the local MTurk-compatible sandbox. The libraries it
wires together live beside it: ``retrieval`` (collections, time buckets, CLIP
embeddings, ranking) and ``analysis`` (aggregation, worker quality, certification,
reports, export).
"""

from collections.abc import Callable
from importlib import import_module
from typing import Any

__version__ = "0.1.0"
"""turk's version; pyproject.toml reads it from here (a literal: no metadata lookup)."""

__all__ = ["__version__"]


def _lazy_exports(package: str, exports: dict[str, str]) -> Callable[[str], Any]:
    """Build a package's ``__getattr__`` that loads each exported name on first use.

    Args:
        package: The package's ``__name__``.
        exports: ``{name: module that defines it}``.

    Returns:
        The module-level ``__getattr__`` (PEP 562).
    """

    def getattr_(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(import_module(module), name)

    return getattr_
