"""Commands of the project area (see :mod:`turk.cli.commands`)."""

from turk.cli.app import app  # noqa: F401
