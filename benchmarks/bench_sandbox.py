"""Benchmark: Requester API calls/s against the sandbox with boto3 from several threads.

Starts ``turk.sandbox`` in its own process (as ``turk sandbox serve`` runs it), fills one
HIT with 100 submitted assignments through the worker pages, then measures calls/s of:

* baseline: ``GetAccountBalance`` (no store work: HTTP, SigV4, JSON and routing only);
* ``CreateHITWithHITType`` (validation, Question XML parse, a write transaction);
* ``ListAssignmentsForHIT`` with MaxResults=10 (the default) and 100 (a full page of 100
  assignments with their 12-item answers; botocore's parsing of the reply dominates).

Each figure is the median of ``--repeats`` windows of ``--seconds`` with ``--threads``
boto3 clients (one per thread), operations interleaved so load from other work on the
machine falls on all of them. Target: >= 300 calls/s for both operations. Appends the
figures and their ratio to the baseline to ``benchmarks/RESULTS.md``.

Usage::

    .venv/bin/python benchmarks/bench_sandbox.py [--threads 4] [--seconds 3] [--repeats 3]
        [--no-append]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
sys.path.insert(0, str(ROOT))

_SERVER = r"""
import sys
from pathlib import Path
from turk.sandbox import SandboxConfig, serve_forever
config = SandboxConfig(state_path=Path(sys.argv[1]))
serve_forever(config, on_ready=lambda url: print(url, flush=True))
"""


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _client(url: str):  # type: ignore[no-untyped-def]
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        "mturk",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="AKIABENCH",
        aws_secret_access_key="bench",
        config=Config(retries={"max_attempts": 1}, max_pool_connections=4),
    )


def _cpu_seconds(pid: int) -> float:
    """CPU time (user + system) used so far by a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rate(calls: list[Callable[[], object]], seconds: float) -> float:
    """Run one call per thread in a loop for ``seconds``; return total calls/s."""
    counts = [0] * len(calls)
    stop = time.perf_counter() + seconds
    barrier = threading.Barrier(len(calls) + 1)

    def loop(index: int) -> None:
        barrier.wait()
        call = calls[index]
        n = 0
        while time.perf_counter() < stop:
            call()
            n += 1
        counts[index] = n

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    started = time.perf_counter()
    barrier.wait()
    for thread in threads:
        thread.join()
    return sum(counts) / (time.perf_counter() - started)


def main() -> None:
    """Run the benchmark and append its figures to benchmarks/RESULTS.md."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-append", action="store_true")
    args = parser.parse_args()

    import httpx

    from tests.fixtures.sandbox import contract_page, html_question

    workdir = Path(tempfile.mkdtemp(prefix="bench-sandbox-"))
    started = time.perf_counter()
    server = subprocess.Popen(
        [sys.executable, "-c", _SERVER, str(workdir / "state.db")],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        ready_s = time.perf_counter() - started
        question = html_question(contract_page([f"{url}/media/x.jpg"] * 12, concept="bus"))
        setup = _client(url)
        type_id = setup.create_hit_type(
            Title="bench", Description="bench", Reward="0.05", AssignmentDurationInSeconds=600
        )["HITTypeId"]
        hit_id = setup.create_hit_with_hit_type(
            HITTypeId=type_id, MaxAssignments=100, LifetimeInSeconds=86400, Question=question
        )["HIT"]["HITId"]
        answers = {f"item-{i}": "yes" for i in range(12)}
        with httpx.Client() as http:
            for i in range(100):
                accepted = http.post(
                    f"{url}/worker/hits/{hit_id}/accept", params={"workerId": f"ABENCH{i}"}
                )
                assignment_id = accepted.headers["location"].split("/")[-1].split("?")[0]
                http.post(
                    f"{url}/mturk/externalSubmit",
                    data={"assignmentId": assignment_id, "workerId": f"ABENCH{i}", **answers},
                )
        listed = setup.list_assignments_for_hit(HITId=hit_id, MaxResults=100)["NumResults"]
        assert listed == 100, listed

        clients = [_client(url) for _ in range(args.threads)]
        operations: dict[str, Callable[[object], object]] = {
            "GetAccountBalance (baseline)": lambda c: c.get_account_balance(),  # type: ignore[attr-defined]
            "CreateHITWithHITType": lambda c: c.create_hit_with_hit_type(  # type: ignore[attr-defined]
                HITTypeId=type_id, MaxAssignments=3, LifetimeInSeconds=3600, Question=question
            ),
            "ListAssignmentsForHIT (10 per page, the default)": lambda c: (
                c.list_assignments_for_hit(  # type: ignore[attr-defined]
                    HITId=hit_id, MaxResults=10
                )
            ),
            "ListAssignmentsForHIT (100 per page)": lambda c: c.list_assignments_for_hit(  # type: ignore[attr-defined]
                HITId=hit_id, MaxResults=100
            ),
        }
        for op in operations.values():  # warm up connections
            for c in clients:
                op(c)
        rates: dict[str, list[float]] = {name: [] for name in operations}
        server_ms: dict[str, list[float]] = {name: [] for name in operations}
        for _ in range(args.repeats):
            for name, op in operations.items():
                calls = [(lambda c=c, op=op: op(c)) for c in clients]
                cpu_before, wall_before = _cpu_seconds(server.pid), time.perf_counter()
                rate = _rate(calls, args.seconds)
                cpu = _cpu_seconds(server.pid) - cpu_before
                rates[name].append(rate)
                server_ms[name].append(1000 * cpu / (rate * (time.perf_counter() - wall_before)))
    finally:
        server.terminate()
        server.wait(timeout=10)

    medians = {name: statistics.median(values) for name, values in rates.items()}
    baseline = medians["GetAccountBalance (baseline)"]
    lines = [
        f"\n## Sandbox API throughput ({datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')})\n",
        f"Command: `.venv/bin/python benchmarks/bench_sandbox.py --threads {args.threads} "
        f"--seconds {args.seconds} --repeats {args.repeats}`  ",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, {_cpu_model()} "
        "(shared with other work; server in its own process, boto3 clients in threads)  ",
        f"Server ready in {ready_s:.2f} s (process start to URL printed).\n",
        "Server CPU per call: CPU time of the server process / calls (its capacity on one core "
        "is 1000 / that); the rest of each call is the boto3 client (signing, parsing).\n",
        "| operation | median calls/s | runs | ratio to baseline | server CPU ms/call | target |",
        "| --- | ---: | --- | ---: | ---: | --- |",
    ]
    for name, values in rates.items():
        target = (
            ""
            if "baseline" in name
            else (">= 300: met" if medians[name] >= 300 else ">= 300: MISSED")
        )
        runs = ", ".join(f"{v:.0f}" for v in values)
        cpu_ms = statistics.median(server_ms[name])
        lines.append(
            f"| {name} | {medians[name]:.0f} | {runs} | {medians[name] / baseline:.2f} "
            f"| {cpu_ms:.2f} | {target} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.no_append:
        with RESULTS.open("a", encoding="utf-8") as handle:
            handle.write(text)


if __name__ == "__main__":
    main()
