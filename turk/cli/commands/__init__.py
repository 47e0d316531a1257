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

from turk.cli.app import COMMAND_ORDER, app
from turk.cli.commands import (  # noqa: F401
    analysis,
    collection,
    crowd,
    project,
    retrieval,
    sandbox,
    templates,
)

app.registered_commands.sort(
    key=lambda info: COMMAND_ORDER.index(info.name) if info.name in COMMAND_ORDER else 99
)
