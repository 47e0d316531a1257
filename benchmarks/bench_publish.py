"""Publishing and collecting at scale against the local sandbox: calls per HIT, HITs/s.

Publishes N HITs (default 2,000; one image each, MaxAssignments 1) twice, each time to
a fresh sandbox server in its own process with a fresh copy of the same ledger: once
one at a time (``--concurrency 1``, the baseline) and once with ``--concurrency C``.
Every API reply is delayed by ``--latency`` seconds (the sandbox's ``slow`` fault), the
round trip a requester sees to MTurk's endpoint; the ratio of HITs/s is the figure.
API calls are counted client-side with botocore's ``before-call`` event.

Then one answer is submitted to every HIT through the worker pages and ``collect``
runs twice: API calls per collected assignment when every HIT has new work, and the
calls of a rerun with nothing new. Figures are appended to ``benchmarks/RESULTS.md``.

Run: ``.venv/bin/python benchmarks/bench_publish.py [--hits 2000] [--latency 0.05]``.
"""

from __future__ import annotations

import argparse
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "RESULTS.md"


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def _cores() -> int:
    import os

    return os.cpu_count() or 1


class Server:
    """``turk sandbox serve`` in its own process on a free port."""

    def __init__(self, workdir: Path, latency: float) -> None:
        self.media = workdir / "media"
        self.media.mkdir(parents=True, exist_ok=True)
        args = [
            sys.executable,
            "-m",
            "turk",
            "sandbox",
            "serve",
            "--port",
            "0",
            "--state",
            str(workdir / "sandbox.db"),
            "--media",
            str(self.media),
        ]
        if latency:
            args += ["--faults", f"slow={latency}"]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True, cwd=ROOT)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        found = re.search(r"http://127\.0\.0\.1:\d+", line)
        if not found:
            self.proc.kill()
            raise SystemExit(f"sandbox did not start: {line!r}")
        self.url = found.group(0)

    def stop(self) -> None:
        """Stop the server process."""
        self.proc.terminate()
        self.proc.wait(timeout=10)


def seed(path: Path, hits: int) -> Path:
    """Write a ledger whose plan is ``hits`` one-image HITs."""
    from tests.fixtures.crowd import seed_ledger
    from turk.ledger import Ledger

    per_bucket = hits // 4
    with Ledger(path / "turk.db") as ledger:
        seed_ledger(ledger, path / "images", per_bucket=per_bucket)
    return path / "turk.db"


def publish_once(template: Path, workdir: Path, latency: float, concurrency: int) -> dict:
    """Publish the template ledger's plan to a fresh server; return figures."""
    from turk.crowd.boto import connect
    from turk.crowd.publish import (
        execute_publish,
        load_publish_config,
        plan_for_publish,
        prepare_publish,
    )
    from turk.ledger import Ledger

    shutil.copytree(template.parent, workdir / "project")
    server = Server(workdir / "server", latency)
    ledger = Ledger(workdir / "project" / "turk.db")
    backend = connect("local", endpoint_url=server.url, max_pool_connections=64)
    try:
        plans = plan_for_publish(ledger, backend, items_per_hit=1)
        settings = load_publish_config(max_assignments=1)
        started = time.perf_counter()
        prepared = prepare_publish(ledger, backend, plans, settings, media_dir=server.media)
        report = execute_publish(ledger, backend, prepared, concurrency=concurrency)
        seconds = time.perf_counter() - started
        assert report.published == len(plans), report
        return {
            "hits": report.published,
            "seconds": seconds,
            "rate": report.published / seconds,
            "calls": backend.stats.total_calls,
            "requests": backend.stats.requests,
            "by_operation": dict(backend.stats.calls),
            "server": server,
            "ledger": ledger,
            "backend": backend,
        }
    except BaseException:
        server.stop()
        ledger.close()
        raise


def republish_restored(template: Path, workdir: Path, server: Server) -> dict:
    """Publish the same plan from a fresh copy of the ledger taken before publishing.

    Every HIT already exists on the server: reconciliation (one ListHITs scan) must find
    them all and create none. Returns the figures.
    """
    from turk.crowd.boto import connect
    from turk.crowd.publish import load_publish_config, plan_for_publish, publish
    from turk.ledger import Ledger

    shutil.copytree(template.parent, workdir / "restored")
    backend = connect("local", endpoint_url=server.url, max_pool_connections=64)
    with Ledger(workdir / "restored" / "turk.db") as ledger:
        plans = plan_for_publish(ledger, backend, items_per_hit=1)
        started = time.perf_counter()
        report = publish(
            ledger, backend, plans, load_publish_config(max_assignments=1), media_dir=server.media
        )
        seconds = time.perf_counter() - started
    assert report.published == 0 and report.reconciled == len(plans), report
    return {"hits": len(plans), "seconds": seconds, "by_operation": dict(backend.stats.calls)}


def submit_everywhere(url: str, ledger) -> int:  # type: ignore[no-untyped-def]
    """Have one worker per HIT answer it through the worker pages."""
    import httpx

    hits = ledger.conn.execute(
        "SELECT h.hit_id, COUNT(i.position) FROM hits h JOIN hit_items i "
        "ON i.hit_key = h.hit_key GROUP BY h.id"
    ).fetchall()

    def work(index_hit: tuple[int, tuple[str, int]]) -> None:
        index, (hit_id, items) = index_hit
        with httpx.Client(base_url=url) as http:
            accepted = http.post(f"/worker/hits/{hit_id}/accept", params={"workerId": f"AB{index}"})
            assignment_id = accepted.headers["location"].split("?")[0].rsplit("/", 1)[-1]
            answers = {f"item-{i}": "yes" for i in range(items)}
            # the submission is bound to the worker holding the assignment
            http.post(
                "/mturk/externalSubmit",
                data={"assignmentId": assignment_id, "workerId": f"AB{index}", **answers},
            )

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(work, enumerate(hits)))
    return len(hits)


def main() -> None:
    """Run the benchmark and append its figures to benchmarks/RESULTS.md."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hits", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--no-append", action="store_true")
    args = parser.parse_args()

    from turk.crowd.collect import collect

    workdir = Path(tempfile.mkdtemp(prefix="bench-publish-"))
    try:
        template = seed(workdir / "template", args.hits)
        runs = {}
        for name, concurrency in (("sequential", 1), ("concurrent", args.concurrency)):
            run = publish_once(template, workdir / name, args.latency, concurrency)
            runs[name] = run
            print(
                f"{name}: {run['hits']} HITs in {run['seconds']:.1f} s = {run['rate']:.1f} HITs/s;"
                f" {run['calls'] / run['hits']:.3f} calls/HIT {run['by_operation']}"
            )
            if name == "sequential":
                run["server"].stop()
                run["ledger"].close()
        concurrent = runs["concurrent"]
        server, ledger, backend = concurrent["server"], concurrent["ledger"], concurrent["backend"]
        try:
            restored = republish_restored(template, workdir, server)
            restored_calls = sum(restored["by_operation"].values())
            print(
                f"restored ledger: {restored['hits']} HITs found, none created, in "
                f"{restored['seconds']:.1f} s with {restored_calls} calls "
                f"{restored['by_operation']}"
            )
            submitted = submit_everywhere(server.url, ledger)
            before = backend.stats.total_calls
            started = time.perf_counter()
            first = collect(ledger, backend, concurrency=args.concurrency)
            collect_s = time.perf_counter() - started
            first_calls = backend.stats.total_calls - before
            before = backend.stats.total_calls
            second = collect(ledger, backend)
            second_calls = backend.stats.total_calls - before
        finally:
            server.stop()
            ledger.close()
        assert first.assignments_new == submitted, first
        ratio = concurrent["rate"] / runs["sequential"]["rate"]
        per_assignment = first_calls / first.assignments_new
        print(
            f"speed-up {ratio:.1f}x; collect: {first.assignments_new} assignments with "
            f"{first_calls} calls ({per_assignment:.3f}/assignment, {collect_s:.1f} s, "
            f"{first.calls}); rerun: {second.assignments_new} new, {second_calls} calls"
        )
        if args.no_append:
            return
        seq = runs["sequential"]
        lines = [
            "",
            f"## Publish and collect at scale ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)",
            "",
            f"Command: `.venv/bin/python benchmarks/bench_publish.py --hits {args.hits} "
            f"--latency {args.latency} --concurrency {args.concurrency}`  ",
            f"Machine: {platform.machine()}, {_cores()} cores, {_cpu_model()} (shared with "
            "other work; sandbox in its own process, every API reply delayed by "
            f"{args.latency * 1000:.0f} ms to stand for the round trip to MTurk)",
            "",
            "| measure | sequential (baseline) | concurrent | ratio | target |",
            "| --- | ---: | ---: | ---: | --- |",
            f"| HITs/s publishing {args.hits} HITs | {seq['rate']:.1f} | "
            f"{concurrent['rate']:.1f} (--concurrency {args.concurrency}) | {ratio:.1f}x | "
            f">= 4x: {'met' if ratio >= 4 else 'MISSED'} |",
            f"| API calls per HIT (reconciliation included) | {seq['calls'] / seq['hits']:.3f} | "
            f"{concurrent['calls'] / concurrent['hits']:.3f} | | <= 1.05: "
            f"{'met' if concurrent['calls'] / concurrent['hits'] <= 1.05 else 'MISSED'} |",
            "",
            "Calls of the concurrent publish by operation: "
            + ", ".join(f"{k} {v}" for k, v in sorted(concurrent["by_operation"].items()))
            + ". Reconciliation costs one ListHITs scan per publish: one page of 100 HITs "
            "per 100 HITs the account holds (1 call on a fresh account).",
            "",
            f"Publish from a ledger restored from before the first publish (all {restored['hits']} "
            f"HITs exist): {restored_calls} calls "
            f"({', '.join(f'{k} {v}' for k, v in sorted(restored['by_operation'].items()))}), "
            f"0 created, {restored['seconds']:.1f} s.",
            "",
            f"Collect, every HIT with one new assignment: {first_calls} calls for "
            f"{first.assignments_new} assignments = {per_assignment:.3f} per assignment "
            f"({', '.join(f'{k} {v}' for k, v in sorted(first.calls.items()))}; target <= 1.1: "
            f"{'met' if per_assignment <= 1.1 else 'MISSED'}); rerun with nothing new: "
            f"{second_calls} calls (target 0 per HIT: "
            f"{'met' if second_calls == 0 else 'MISSED'}).",
            "",
        ]
        with RESULTS.open("a", encoding="utf-8") as handle:
            handle.write("\n".join(lines))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
