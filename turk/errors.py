"""Errors turk raises on purpose, and the one tree they form.

Library code raises these; the command line turns any of them into one line on
stderr (``turk: error: <message>``) and a non-zero exit. Every message names the file,
line, id, key or option at fault and says what to do about it.

::

    Exception
    ├── TurkError                          the application (this package)
    │   ├── ConfigError                    a bad option, config or project file
    │   ├── InputError                     outside data that cannot be used as a whole
    │   ├── LedgerError                    no ledger there, or one from a newer turk
    │   │   ├── LedgerFileError            not a turk ledger, or SQLite cannot read the file
    │   │   └── BusyError                  another command holds the ledger's crowd lock
    │   ├── StageError                     a stage asked for before its inputs exist
    │   ├── MoneyError                     an amount, budget or production guard refused
    │   ├── CrowdError                     a crowd backend refused or failed a call
    │   └── TemplateError                  a HIT template or instruction set is unusable
    ├── retrieval.errors.RetrievalError    the retrieval library
    │   ├── CollectionError                metadata, image folders, bucket ranges
    │   ├── ModelError                     CLIP model, weights, device
    │   │   └── WeightsUnavailableError    weights not cached and no network to fetch them
    │   └── ConceptsError                  concepts files
    └── analysis.errors.AnalysisError      the analysis library

``retrieval`` and ``analysis`` never import :mod:`turk`, so their roots are their own;
:data:`USER_ERRORS` gathers the three roots for the command line.
"""

from analysis.errors import AnalysisError
from retrieval.errors import (
    CollectionError,
    ConceptsError,
    ModelError,
    RetrievalError,
    WeightsUnavailableError,
)


class TurkError(Exception):
    """Base class of every error the turk application raises on purpose."""


class ConfigError(TurkError):
    """An option, config file or project file is wrong; the message names the key."""


class InputError(TurkError):
    """Outside data (a file, a folder, an answer) cannot be used as a whole."""


class LedgerError(TurkError):
    """The ledger is missing, unusable, or was written by a newer turk."""


class LedgerFileError(LedgerError):
    """The file is not a turk ledger (another program's, not SQLite), or SQLite failed on it.

    The message names the file and the fix; nothing was written to a foreign file.
    """


class BusyError(LedgerError):
    """Another turk command is changing the same ledger's crowd state for the same target."""


class StageError(TurkError):
    """A stage was asked for before the stages it needs have run."""


class MoneyError(TurkError):
    """An amount is not valid money, a budget would be crossed, or a guard refused."""


class CrowdError(TurkError):
    """A crowd backend refused or failed a call after retries."""


class TemplateError(TurkError):
    """A HIT template or instruction set is unusable; the message names file and variable."""


USER_ERRORS: tuple[type[Exception], ...] = (TurkError, RetrievalError, AnalysisError)
"""Roots of every error the command line reports as one line instead of a traceback."""

__all__ = [
    "USER_ERRORS",
    "AnalysisError",
    "BusyError",
    "CollectionError",
    "ConceptsError",
    "ConfigError",
    "CrowdError",
    "InputError",
    "LedgerError",
    "LedgerFileError",
    "ModelError",
    "MoneyError",
    "RetrievalError",
    "StageError",
    "TemplateError",
    "TurkError",
    "WeightsUnavailableError",
]
