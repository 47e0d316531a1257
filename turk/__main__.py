"""``python -m turk`` runs the command line."""

from turk.cli.main import entry

entry()
