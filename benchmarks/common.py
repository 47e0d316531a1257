"""What every benchmark shares: naming the machine and appending to ``RESULTS.md``."""

from __future__ import annotations

import os
import platform
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
"""Where every benchmark appends its command, machine, date and figures."""


def machine() -> str:
    """One line naming this machine: architecture, core count and CPU model."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.machine()}, {os.cpu_count()} cores, {model}"


def append_results(text: str) -> None:
    """Append a benchmark's section to ``benchmarks/RESULTS.md``."""
    with RESULTS.open("a", encoding="utf-8") as fh:
        fh.write(text)
