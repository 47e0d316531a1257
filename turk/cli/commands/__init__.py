"""Command modules, one per area; importing this package registers them all.

=============  ==============================================================
collection     sample, ingest, buckets
retrieval      embed, rank, preview
templates      render
sandbox        sandbox serve, sandbox workers, sandbox clock
crowd          publish, collect, review, status, expire
analysis       audit, report, export
project        init, run, demo, doctor
=============  ==============================================================
"""

from turk.cli.app import COMMAND_ORDER as _COMMAND_ORDER
from turk.cli.app import app as _app
from turk.cli.commands import (  # noqa: F401
    analysis,
    collection,
    crowd,
    project,
    retrieval,
    sandbox,
    templates,
)

_app.registered_commands.sort(
    key=lambda info: _COMMAND_ORDER.index(info.name) if info.name in _COMMAND_ORDER else 99
)

__all__: list[str] = []  # importing the package registers the commands on the app
