"""Commands of the retrieval area (see :mod:`turk.cli.commands`)."""

from turk.cli.app import app  # noqa: F401
