"""Commands of the candidates area (:mod:`turk.candidates`): ``embed``, ``rank``, ``preview``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from retrieval.modelnames import DEFAULT_MODEL, DEFAULT_PRETRAINED
from turk.cli.app import app, open_ledger
from turk.cli.console import console, err_console, progress_bar
from turk.text import counted

_MODEL_HELP = (
    "open_clip model name (e.g. ViT-B-32, ViT-L-14) or the path of an open_clip model "
    "config JSON for a custom architecture."
)
_PRETRAINED_HELP = (
    "Weights: an open_clip pretrained tag (fetched once into open_clip's cache), the "
    "path of a local weights file, or 'none' for random weights."
)
_DEVICE_HELP = "auto (CUDA when present), cpu, or cuda (an error when CUDA is absent)."


@contextmanager
def _progress(description: str, total: int | None, unit: str) -> Iterator[Callable[[int], None]]:
    """A progress bar with a rate on a terminal; silent when stderr is a file or pipe."""
    if err_console.is_terminal:
        with progress_bar(description, total, unit) as advance:
            yield advance
    else:
        yield lambda n: None


def _weights(pretrained: str) -> str | None:
    from retrieval.modelnames import parse_pretrained

    return parse_pretrained(pretrained)


@app.command("embed")
def embed_command(
    ctx: typer.Context,
    model: Annotated[str, typer.Option("--model", help=_MODEL_HELP)] = DEFAULT_MODEL,
    pretrained: Annotated[
        str, typer.Option("--pretrained", help=_PRETRAINED_HELP)
    ] = DEFAULT_PRETRAINED,
    device: Annotated[str, typer.Option("--device", help=_DEVICE_HELP)] = "auto",
    dtype: Annotated[
        str,
        typer.Option(
            "--dtype", help="Number format: auto (fp16 on CUDA, fp32 on CPU), fp32, fp16 or bf16."
        ),
    ] = "auto",
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, help="Images per encoder call.")
    ] = 256,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            min=0,
            help="CPU decode processes (0: in-process); on CUDA, file readers (4 threads each).",
        ),
    ] = 2,
    shard_size: Annotated[
        int,
        typer.Option("--shard-size", min=1, help="Images per shard (the most a killed run loses)."),
    ] = 10_000,
    tar: Annotated[
        list[str] | None,
        typer.Option(
            "--tar",
            help="webdataset / img2dataset tar shards to read images from instead of the "
            "ledger's local files: paths, brace patterns such as "
            "'shards/{00000..00099}.tar', or globs (repeatable; more paths may follow).",
        ),
    ] = None,
    more_tars: Annotated[
        list[str] | None,
        typer.Argument(
            help="More tar shards, e.g. what the shell expands --tar shards/{0..9}.tar into.",
            show_default=False,
            metavar="[TAR]...",
        ),
    ] = None,
    engine: Annotated[
        str,
        typer.Option(
            "--engine",
            help="local: this process and its decode workers; ray: one Ray Data task per "
            "shard on a Ray cluster, every GPU of it (needs pip install 'turk[ray]'; "
            "see docs/scale.md).",
        ),
    ] = "local",
    address: Annotated[
        str | None,
        typer.Option(
            "--address",
            help="With --engine ray: the cluster (auto, ray://HOST:10001, HOST:6379); "
            "default $RAY_ADDRESS, a cluster started here with 'ray start', else a new "
            "local cluster of this machine.",
            show_default=False,
        ),
    ] = None,
    actors: Annotated[
        int | None,
        typer.Option(
            "--actors",
            min=1,
            help="With --engine ray: model copies at once (default one per GPU, or one "
            "per CPU without GPUs).",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        str | None,
        typer.Option(
            "--out",
            help="Folder or fsspec URL (s3://bucket/embeddings) for the shards; on a "
            "cluster, storage every node shares. Default: embeddings/ beside the ledger.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Embed the ledger's images with CLIP into resumable shards beside the ledger."""
    from retrieval.tarshards import expand_shard_pattern
    from turk.candidates.embed import ENGINES, plan_embedding, run_embedding

    if more_tars and not tar:
        raise typer.BadParameter(
            f"{more_tars[0]}: tar shards follow --tar; write 'turk embed --tar PATH...'"
        )
    tar_paths = [
        name
        for pattern in [*(tar or []), *(more_tars or [])]
        for name in expand_shard_pattern(pattern)
    ]

    if engine not in ENGINES:
        raise typer.BadParameter(f"--engine {engine!r}: use {' or '.join(ENGINES)}")
    if engine == "local" and (address is not None or actors is not None):
        raise typer.BadParameter("--address and --actors go with --engine ray")

    with open_ledger(ctx) as ledger:
        if engine == "ray":
            from turk.candidates.embed import plan_ray_embedding, run_ray_embedding

            ray_plan = plan_ray_embedding(
                ledger,
                model=model,
                pretrained=_weights(pretrained),
                shard_size=shard_size,
                out=out,
                tar_paths=tar_paths,
            )
            with _progress("embed", ray_plan.total, "images") as advance:
                report = run_ray_embedding(
                    ledger,
                    ray_plan,
                    address=address,
                    device=device,
                    precision=dtype,
                    batch_size=batch_size,
                    workers=workers,
                    actors=actors,
                    on_progress=advance,
                )
        else:
            plan = plan_embedding(
                ledger,
                model=model,
                pretrained=_weights(pretrained),
                device=device,
                precision=dtype,
                tar_paths=tar_paths,
                out=out,
            )
            with _progress("embed", plan.total, "images") as advance:
                report = run_embedding(
                    ledger,
                    plan,
                    batch_size=batch_size,
                    workers=workers,
                    shard_size=shard_size,
                    on_progress=advance,
                )
    unmatched = f", {report.tar_unmatched} tar samples not in the ledger" if tar else ""
    console.print(
        f"embed: {report.images:,} images in {counted(report.shards, 'new shard')} "
        f"({report.images_per_second:,.0f} images/s on {report.device}), "
        f"{report.failed} unreadable (recorded), {report.already_done:,} already done"
        f"{unmatched}; {out.rstrip('/') + '/' if out else 'embeddings/'}{report.slug}"
    )


@app.command("rank")
def rank_command(
    ctx: typer.Context,
    concepts: Annotated[
        Path, typer.Argument(help="Concepts YAML (see docs/design.md).", show_default=False)
    ],
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help=_MODEL_HELP + " Must match 'turk embed'; default: the model the ledger "
            "holds embeddings of, when it holds one.",
            show_default=False,
        ),
    ] = None,
    pretrained: Annotated[
        str | None,
        typer.Option(
            "--pretrained",
            help=_PRETRAINED_HELP + " Must match 'turk embed' (default: as --model).",
            show_default=False,
        ),
    ] = None,
    device: Annotated[str, typer.Option("--device", help=_DEVICE_HELP)] = "auto",
) -> None:
    """Rank every unreserved bucket per concept; write candidates (ledger, Parquet, CSV)."""
    from turk.candidates.rank import embedded_model, rank_ledger

    with open_ledger(ctx) as ledger, _progress("rank", None, "vectors") as advance:
        if model is None and pretrained is None:
            model, weights = embedded_model(ledger)
        else:
            model = model or DEFAULT_MODEL
            weights = _weights(pretrained) if pretrained is not None else DEFAULT_PRETRAINED
        report = rank_ledger(
            ledger,
            concepts,
            model=model,
            pretrained=weights,
            device=device,
            on_progress=advance,
        )
    console.print(
        f"rank: {len(report.concepts)} concepts x {len(report.buckets)} buckets over "
        f"{report.embeddings:,} embeddings; {report.positives:,} positives, "
        f"{report.background:,} background; skipped reserved buckets "
        f"{report.reserved or 'none'}; {len(report.short)} concept-buckets below "
        f"images_per_class; wrote {report.parquet} and {report.csv}"
    )


@app.command("preview")
def preview_command(
    ctx: typer.Context,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Folder for the pages. Default: preview/ beside the ledger."),
    ] = None,
    notice: Annotated[
        str | None,
        typer.Option("--notice", help="A warning to show at the top of every page."),
    ] = None,
) -> None:
    """Write static HTML contact sheets of the candidates, per concept and bucket."""
    from turk.candidates.preview import preview_ledger

    with open_ledger(ctx) as ledger:
        summary = preview_ledger(ledger, out, notice=notice)
    console.print(
        f"preview: {len(summary.pages)} pages, {summary.thumbnails} new thumbnails, "
        f"{summary.missing} images without a file; open {summary.index}"
    )
