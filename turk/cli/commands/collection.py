"""Commands of the collection area: ``turk sample``, ``turk ingest``, ``turk buckets``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from turk.cli.app import app, open_ledger
from turk.cli.console import console, err_console, progress_bar


@contextmanager
def _progress(description: str, total: int | None, unit: str) -> Iterator[Callable[[int], None]]:
    """A progress bar with a rate on a terminal; silent when stderr is a file or pipe,
    so that logs and error output keep one line per event."""
    if err_console.is_terminal:
        with progress_bar(description, total, unit) as advance:
            yield advance
    else:
        yield lambda n: None


@app.command("sample")
def sample_command(
    out_dir: Annotated[
        Path, typer.Argument(help="Folder to write the sample collection into.", show_default=False)
    ],
    n: Annotated[int, typer.Option("--n", help="Number of photos to write.")] = 2000,
    seed: Annotated[int, typer.Option("--seed", help="Seed; same seed, same files.")] = 0,
    metadata_only: Annotated[
        bool,
        typer.Option(
            "--metadata-only", help="Write only metadata.tsv (no images), e.g. for benchmarks."
        ),
    ] = False,
    image_size: Annotated[
        str, typer.Option("--image-size", help="JPEG size as WIDTHxHEIGHT.")
    ] = "500x375",
) -> None:
    """Write a sample YFCC100M-style collection: metadata.tsv, images/, truth.csv, gold.csv,
    concepts.yaml."""
    from turk.collection.sample import parse_image_size, write_sample

    size = parse_image_size(image_size)
    with _progress(
        "sample", n if not metadata_only else None, "rows" if metadata_only else "images"
    ) as advance:
        summary = write_sample(
            out_dir,
            n=n,
            seed=seed,
            image_size=size,
            metadata_only=metadata_only,
            on_progress=advance,
        )
    what = "kept the identical sample already in" if summary.reused else "wrote"
    kinds = ", ".join(f"{c} {k}" for c, k in sorted(summary.concepts.items()))
    console.print(
        f"sample: {what} {out_dir}: {summary.images:,} photos ({kinds}), "
        f"{summary.videos} videos, {summary.malformed} malformed lines"
    )


@app.command("ingest")
def ingest_command(
    ctx: typer.Context,
    metadata: Annotated[
        list[Path],
        typer.Argument(
            help="YFCC100M metadata files (25 or 23 columns; plain, .bz2 or .gz) or "
            "img2dataset output folders.",
            show_default=False,
        ),
    ],
    images: Annotated[
        Path | None,
        typer.Option(
            "--images",
            help="Folder of local image files named by photo id (<id>.jpg, any depth).",
            show_default=False,
        ),
    ] = None,
    photos_only: Annotated[
        bool,
        typer.Option(
            "--photos-only/--keep-videos", help="Keep only photos (marker 0), as CLEAR did."
        ),
    ] = True,
    valid_date: Annotated[
        bool,
        typer.Option("--valid-date", help="Drop rows whose date taken is after their upload time."),
    ] = False,
    min_bytes: Annotated[
        int | None,
        typer.Option(
            "--min-bytes", help="Drop image files smaller than N bytes.", show_default=False
        ),
    ] = None,
    min_edge: Annotated[
        int | None,
        typer.Option(
            "--min-edge",
            help="Drop images whose shorter side is below N px.",
            show_default=False,
        ),
    ] = None,
    max_aspect: Annotated[
        float | None,
        typer.Option(
            "--max-aspect",
            help="Drop images whose long/short side ratio exceeds R.",
            show_default=False,
        ),
    ] = None,
    rejects: Annotated[
        Path | None,
        typer.Option(
            "--rejects",
            help="Folder for rejects files (default: <ledger dir>/rejects).",
            show_default=False,
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            help="Processes parsing each metadata file while ingest inserts; 0 parses "
            "in-process [default: 0 for files under 4 MB, else min(2, CPUs)].",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Read YFCC100M metadata into the ledger; malformed lines go to a rejects file."""
    from retrieval.collection import CollectionFilters
    from retrieval.errors import CollectionError
    from turk.collection.ingest import ingest_collection, open_sources

    filters = CollectionFilters(photos_only, valid_date, min_bytes, min_edge, max_aspect)
    # Whole-file checks first.
    open_sources(metadata, filters=filters, images_dir=images, workers=workers)
    with open_ledger(ctx) as ledger, _progress("ingest", None, "rows") as advance:
        summary = ingest_collection(
            ledger,
            metadata,
            filters=filters,
            images_dir=images,
            rejects_dir=rejects,
            on_progress=advance,
            workers=workers,
        )
    for f in summary.files:
        filtered = ", ".join(f"{n:,} {why}" for why, n in sorted(f.filtered.items())) or "none"
        console.print(
            f"{f.path} ({f.layout}): {f.lines:,} lines"
            + (f" ({f.blank:,} blank, skipped)" if f.blank else "")
            + f", {f.inserted:,} new, "
            f"{f.already_present:,} already present, {f.rejected:,} rejected, filtered: {filtered}"
            + (f"; rejects in {f.rejects_path}" if f.rejects_path else "")
        )
    console.print(
        f"ingest: {summary.total('inserted'):,} images added from {len(summary.files)} "
        f"file(s); {summary.total('rejected'):,} lines rejected"
    )
    for f in summary.files:
        if f.all_rejected:
            fix = (
                "each sidecar needs photo_id and date_uploaded (img2dataset "
                "--save_additional_columns; docs/yfcc100m.md)"
                if f.layout == "img2dataset"
                else "check that this is YFCC100M metadata (docs/yfcc100m.md)"
            )
            what = "sidecars" if f.layout == "img2dataset" else "lines"
            raise CollectionError(
                f"{f.path}: all {f.rejected:,} {what} rejected (first: {f.first_reject}; "
                f"all in {f.rejects_path}); {fix}"
            )


@app.command("buckets")
def buckets_command(
    ctx: typer.Context,
    count: Annotated[
        int | None,
        typer.Option(
            "--count",
            help="Equal-count buckets by upload time [default: 11].",
            show_default=False,
        ),
    ] = None,
    by_year: Annotated[
        bool, typer.Option("--by-year", help="One bucket per calendar year (UTC).")
    ] = False,
    ranges: Annotated[
        Path | None,
        typer.Option(
            "--ranges",
            help="JSON list of {start, end} UTC ranges (CLEAR's "
            "clear_10_time.json format; end inclusive).",
            show_default=False,
        ),
    ] = None,
    reserve: Annotated[
        list[int] | None,
        typer.Option(
            "--reserve",
            help="Mark bucket K unlabeled (pre-training only); repeat for more "
            "[default: 0, as CLEAR and turk.yaml do].",
            show_default=False,
        ),
    ] = None,
    no_reserve: Annotated[
        bool, typer.Option("--no-reserve", help="Label every bucket (reserve none).")
    ] = False,
) -> None:
    """Split the ingested images into time buckets by upload time and print the table."""
    from turk.collection.buckets import DEFAULT_RESERVE, format_bucket_table, make_buckets

    if no_reserve and reserve:
        raise typer.BadParameter("--no-reserve and --reserve K exclude each other")
    chosen = () if no_reserve else (reserve if reserve is not None else DEFAULT_RESERVE)
    with open_ledger(ctx, create=False) as ledger:
        result = make_buckets(
            ledger, count=count, by_year=by_year, ranges_file=ranges, reserve=chosen
        )
    console.print(format_bucket_table(result.buckets))
    outside = f"; {result.unassigned:,} outside every range" if result.unassigned else ""
    console.print(
        f"buckets: {len(result.buckets)} buckets ({result.scheme}) over "
        f"{result.total_images:,} images{outside}"
    )
