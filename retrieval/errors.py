"""Errors raised by the retrieval library.

Every error is a :class:`RetrievalError`; its message names the file, line, id or
option at fault and says what to do. See :mod:`turk.errors` for the whole tree.
"""


class RetrievalError(Exception):
    """Base class of every error the retrieval library raises on purpose."""


class CollectionError(RetrievalError):
    """A collection file (metadata, image folder, ranges file) cannot be used."""


class ModelError(RetrievalError):
    """A CLIP model, its weights or the requested device cannot be used."""


class WeightsUnavailableError(ModelError):
    """Pretrained weights are named by tag but are neither cached nor downloadable.

    Attributes:
        model: The open_clip model name.
        pretrained: The pretrained tag asked for.
    """

    def __init__(self, message: str, *, model: str, pretrained: str) -> None:
        super().__init__(message)
        self.model = model
        self.pretrained = pretrained


class ConceptsError(RetrievalError):
    """A concepts file is malformed or inconsistent."""
