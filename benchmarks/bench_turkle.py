"""Benchmark: the Turkle target's calls against the local sandbox's, in the same run.

Starts a Turkle server (turk's site, fresh state: migrations included, then again on the
same state) and the local sandbox, then times on each backend, one call at a time as
publish's lock makes them on Turkle:

* ``create_hit`` (Turkle: the token check, a batch of one task; the sandbox: CreateHIT);
* ``get_hit`` (Turkle: the batch and its progress; the sandbox: GetHIT);
* ``list_assignments`` of a HIT with one submitted assignment (Turkle: its results CSV).

Figures are medians over ``--hits`` calls; the ratio is Turkle's time over the
sandbox's (the baseline). Appends command, machine, date and figures to
``benchmarks/RESULTS.md``.

Usage::

    .venv/bin/python benchmarks/bench_turkle.py [--hits 20] [--no-append]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import append_results, machine  # noqa: E402
from tests.fixtures.sandbox import contract_page, html_question, submit_work  # noqa: E402
from tests.fixtures.turkle import turkle_submit  # noqa: E402
from tests.test_crowd_contract import PAGE  # noqa: E402
from turk.crowd.backend import CrowdBackend, HitTypeSpec  # noqa: E402
from turk.crowd.boto import connect  # noqa: E402
from turk.crowd.turkle import connect_turkle  # noqa: E402
from turk.crowd.turkle_server import TurkleServer, free_port  # noqa: E402
from turk.sandbox import SandboxConfig, SandboxServer  # noqa: E402

QUESTION = html_question(contract_page(["https://example.org/a.jpg"], concept="bus"))
SPEC = HitTypeSpec(
    title="bench",
    description="benchmark",
    keywords="bench",
    reward=Decimal("0.05"),
    assignment_duration_s=600,
    auto_approval_delay_s=3600,
)


def _median_ms(fn: Callable[[int], object], n: int) -> float:
    times = []
    for i in range(n):
        start = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def _measure(
    backend: CrowdBackend, submit: Callable[[str, str, dict[str, str]], str], n: int, tag: str
) -> dict[str, float]:
    type_id = backend.create_hit_type(SPEC)
    ids: list[str] = []

    def create(i: int) -> None:
        ids.append(
            backend.create_hit(
                hit_type_id=type_id,
                question_xml=QUESTION,
                max_assignments=3,
                lifetime_s=3600,
                annotation=f"turk:bench-{tag}:{i}",
                token=f"bench-{tag}-{i}",
                page=PAGE,
            ).hit_id
        )

    out = {"create_hit": _median_ms(create, n)}
    out["get_hit"] = _median_ms(lambda i: backend.get_hit(ids[i]), n)
    for i, hit_id in enumerate(ids):
        submit(hit_id, f"ABENCH{i:04d}", {"item-0": "yes"})
    out["list_assignments"] = _median_ms(lambda i: list(backend.list_assignments(ids[i])), n)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--hits", type=int, default=20)
    parser.add_argument("--no-append", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        start = time.perf_counter()
        turkle = TurkleServer(root / "turkle", port=free_port()).start()
        cold = time.perf_counter() - start
        turkle.stop()
        start = time.perf_counter()
        turkle = TurkleServer(root / "turkle", port=free_port()).start()
        warm = time.perf_counter() - start
        sandbox = SandboxServer(SandboxConfig(state_path=root / "sandbox.db")).start()
        try:
            local = _measure(
                connect("local", endpoint_url=sandbox.url),
                lambda h, w, f: submit_work(sandbox.url, h, w, f),
                args.hits,
                "local",
            )
            mine = _measure(
                connect_turkle(turkle.url, turkle.token()),
                turkle_submit(turkle),
                args.hits,
                "turkle",
            )
        finally:
            sandbox.stop()
            turkle.stop()
    lines = [
        f"## Turkle target against the local sandbox ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)",
        "",
        f"- command: `python benchmarks/bench_turkle.py --hits {args.hits}`",
        f"- machine: {machine()}",
        f"- Turkle server start: {cold:.2f} s on a fresh state (migrations), {warm:.2f} s again",
        "",
        "| call | local sandbox (ms, median) | Turkle (ms, median) | Turkle / sandbox |",
        "| --- | --- | --- | --- |",
    ]
    for name in ("create_hit", "get_hit", "list_assignments"):
        lines.append(
            f"| {name} | {local[name]:.1f} | {mine[name]:.1f} | {mine[name] / local[name]:.2f}x |"
        )
    text = "\n".join(lines) + "\n\n"
    print(text)
    if not args.no_append:
        append_results(text)


if __name__ == "__main__":
    main()
