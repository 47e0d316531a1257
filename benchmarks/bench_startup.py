"""Start-up time of ``turk --help`` against a bare interpreter, in the same run.

Runs the installed console script (``.venv/bin/turk --help``) and, as the baseline,
``python -c pass`` with the same interpreter, alternately, ``--runs`` times each; reports
medians and what the command adds to the interpreter's own start. Target: under 0.3 s.
Appends command, machine, date and figures to ``benchmarks/RESULTS.md`` (``--no-append``
not to).

Usage::

    python benchmarks/bench_startup.py [--runs 15]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from common import append_results, machine

ROOT = Path(__file__).resolve().parent.parent
TARGET_S = 0.3


def _timed(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--no-append", action="store_true", help="do not append to RESULTS.md")
    args = parser.parse_args()
    script = Path(sys.executable).parent / "turk"
    if not script.is_file():
        sys.exit(f"{script}: no turk console script beside this Python; run 'make test' first")
    help_s: list[float] = []
    bare_s: list[float] = []
    _timed([str(script), "--help"])  # warm the file cache once
    for _ in range(args.runs):
        help_s.append(_timed([str(script), "--help"]))
        bare_s.append(_timed([sys.executable, "-c", "pass"]))
    median_help, median_bare = statistics.median(help_s), statistics.median(bare_s)
    verdict = "met" if median_help < TARGET_S else "MISSED"
    text = (
        f"\n## turk --help start-up ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)\n\n"
        f"- command: `python benchmarks/bench_startup.py --runs {args.runs}`\n"
        f"- machine: {machine()}\n"
        f"- `turk --help`: median {median_help:.3f} s (min {min(help_s):.3f}, max "
        f"{max(help_s):.3f}); bare `python -c pass`: median {median_bare:.3f} s; turk adds "
        f"{median_help - median_bare:.3f} s\n"
        f"- target under {TARGET_S} s: {verdict}\n"
    )
    print(text)
    if not args.no_append:
        append_results(text)


if __name__ == "__main__":
    main()
