"""Commands of the hits area (:mod:`turk.hits`): ``turk render``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from turk.cli.app import app, open_ledger
from turk.cli.console import console

InstructionsOption = Annotated[
    str | None,
    typer.Option(
        "--instructions",
        help="Instruction set: a packaged set (sample, clear10) or a folder of "
        "<concept>.md files. Default: the first packaged set covering every concept.",
        show_default=False,
    ),
]
"""``--instructions``, shared by render and publish."""

ConceptOption = Annotated[
    list[str] | None,
    typer.Option("--concept", help="Only this concept (repeat for more).", show_default=False),
]
"""``--concept``, shared by render and publish."""

LanguageOption = Annotated[
    str,
    typer.Option(
        "--language",
        help="Language of the HIT pages' own words (question, Yes/No, keys, Submit), as a "
        "BCP 47 tag: en, zh-Hans, or a strings/<tag>.yaml of --templates "
        "(docs/languages.md).",
    ),
]
"""``--language``, shared by render and publish."""

TemplatesOption = Annotated[
    Path | None,
    typer.Option(
        "--templates",
        help="Folder of templates overriding the packaged ones (same file names; "
        "strings/<tag>.yaml adds a language).",
        show_default=False,
    ),
]
"""``--templates``, shared by render and publish."""

BucketOption = Annotated[
    list[int] | None,
    typer.Option("--bucket", help="Only this bucket (repeat for more).", show_default=False),
]
"""``--bucket``, shared by render and publish."""


@app.command("render")
def render_command(
    ctx: typer.Context,
    task: Annotated[
        str,
        typer.Option(
            "--task",
            help="binary: one concept per HIT, yes/no per image; multi: every class per "
            "image, pick all that apply or none.",
        ),
    ] = "binary",
    items_per_hit: Annotated[
        int, typer.Option("--items-per-hit", help="Most images per HIT, gold included.")
    ] = 12,
    gold: Annotated[
        Path | None,
        typer.Option(
            "--gold",
            help="Gold CSV (image,concept,label) of known answers to mix in; none by default.",
            show_default=False,
        ),
    ] = None,
    gold_rate: Annotated[
        float,
        typer.Option("--gold-rate", help="Share of items that are gold (0 to 0.5; 0.1 = 1 in 10)."),
    ] = 0.1,
    reward: Annotated[
        str, typer.Option("--reward", help="Reward per assignment in USD, e.g. 0.05.")
    ] = "0.05",
    max_assignments: Annotated[
        int,
        typer.Option(
            "--max-assignments",
            help="Workers per HIT (MTurk's fee rises from 20% to 40% at 10 or more).",
        ),
    ] = 3,
    bonus: Annotated[
        str, typer.Option("--bonus", help="Bonus per assignment in USD to include in the cost.")
    ] = "0",
    instructions: InstructionsOption = None,
    concept: ConceptOption = None,
    bucket: BucketOption = None,
    out: Annotated[
        Path, typer.Option("--out", help="Folder for the HTML files, index.html and media/.")
    ] = Path("hits"),
    image_base_url: Annotated[
        str,
        typer.Option(
            "--image-base-url",
            help="Base URL of images in the HTML; a relative folder (default) is filled "
            "under --out so the pages show their images.",
        ),
    ] = "media",
    templates: TemplatesOption = None,
    language: LanguageOption = "en",
    seed: Annotated[int, typer.Option("--seed", help="Seed for order and gold placement.")] = 0,
) -> None:
    """Render, validate and price the HITs, and write their HTML; call no service."""
    from turk.hits.render import dry_run
    from turk.money import parse_amount

    amount = parse_amount(reward, "--reward")
    bonus_amount = parse_amount(bonus, "--bonus")
    if max_assignments < 1:
        raise typer.BadParameter("must be 1 or more", param_hint="--max-assignments")
    with open_ledger(ctx, create=False) as ledger:
        report = dry_run(
            ledger,
            reward=amount,
            max_assignments=max_assignments,
            bonus=bonus_amount,
            out_dir=out,
            image_base_url=image_base_url,
            task=task,
            items_per_hit=items_per_hit,
            gold=gold,
            gold_rate=gold_rate,
            seed=seed,
            instruction_set=instructions,
            concepts=concept,
            buckets=bucket,
            template_dir=templates,
            language=language,
        )
    for line in report.lines():
        console.print(f"render: {line}")
