"""Command modules, one per area and named like it; importing this package registers them all.

=============  ==============================================================
collection     sample, ingest, buckets                     (:mod:`turk.collection`)
candidates     embed, rank, preview                        (:mod:`turk.candidates`)
hits           render                                      (:mod:`turk.hits`)
crowd          publish, collect, review, status, expire,   (:mod:`turk.crowd`)
               turkle serve
dataset        audit, report, export                       (:mod:`turk.dataset`)
project        init, run, round, demo, doctor              (:mod:`turk.project`)
sandbox        sandbox serve, sandbox workers, sandbox clock (:mod:`turk.sandbox`)
=============  ==============================================================
"""

from turk.cli.app import COMMAND_ORDER as _COMMAND_ORDER
from turk.cli.app import app as _app
from turk.cli.commands import (  # noqa: F401
    candidates,
    collection,
    crowd,
    dataset,
    hits,
    project,
    sandbox,
)

_app.registered_commands.sort(
    key=lambda info: _COMMAND_ORDER.index(info.name) if info.name in _COMMAND_ORDER else 99
)

__all__: list[str] = []  # importing the package registers the commands on the app
