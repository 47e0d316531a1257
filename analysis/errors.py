"""Errors raised by the analysis library.

Every error is an :class:`AnalysisError`; its message names the item, worker, file
or option at fault and says what to do. See :mod:`turk.errors` for the whole tree.
"""


class AnalysisError(Exception):
    """Base class of every error the analysis library raises on purpose."""
