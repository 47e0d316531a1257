"""The collection: what is there to curate, and when it was uploaded.

``turk sample`` writes a sample collection (:mod:`~turk.collection.sample`), ``turk
ingest`` reads metadata files into the ledger (:mod:`~turk.collection.ingest`),
``turk buckets`` splits the images into time buckets (:mod:`~turk.collection.buckets`).
The area owns the ``sources``, ``images`` and ``buckets`` tables; other areas read them
through :mod:`turk.collection.tables`. Commands: :mod:`turk.cli.commands.collection`.

The names below load their module on first use, so importing the package costs nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from turk import _lazy_exports

if TYPE_CHECKING:
    from turk.collection.buckets import BucketingResult, BucketRow, make_buckets, read_buckets
    from turk.collection.ingest import (
        IngestSummary,
        image_metadata,
        ingest_collection,
        iter_image_metadata,
    )
    from turk.collection.sample import SampleSummary, write_sample

_EXPORTS: dict[str, str] = {
    "SampleSummary": "turk.collection.sample",
    "write_sample": "turk.collection.sample",
    "IngestSummary": "turk.collection.ingest",
    "image_metadata": "turk.collection.ingest",
    "ingest_collection": "turk.collection.ingest",
    "iter_image_metadata": "turk.collection.ingest",
    "BucketRow": "turk.collection.buckets",
    "BucketingResult": "turk.collection.buckets",
    "make_buckets": "turk.collection.buckets",
    "read_buckets": "turk.collection.buckets",
}

__all__ = [
    "BucketRow",
    "BucketingResult",
    "IngestSummary",
    "SampleSummary",
    "image_metadata",
    "ingest_collection",
    "iter_image_metadata",
    "make_buckets",
    "read_buckets",
    "write_sample",
]


__getattr__ = _lazy_exports(__name__, _EXPORTS)
