"""Plain text for command output: aligned columns that read the same on a terminal, in
a pipe and in a log file, and counts with their nouns."""

from __future__ import annotations

from collections.abc import Collection, Sequence

__all__ = ["counted", "format_table"]


def counted(n: int, noun: str) -> str:
    """A count with its noun, singular for one: ``1 new shard``, ``1,200 new shards``.

    Args:
        n: The count.
        noun: The noun in the singular; the plural adds ``s``.

    Returns:
        The count with thousands separators, and the noun.
    """
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


def format_table(
    header: Sequence[str], rows: Sequence[Sequence[str]], right: Collection[int] = ()
) -> str:
    """Render rows under a header as aligned columns, two spaces apart.

    Args:
        header: Column titles.
        rows: The cells of each row, as text, as many as the header has.
        right: Indexes of columns aligned right (numbers).

    Returns:
        The header line and one line per row, without a final newline.
    """
    table = [tuple(header), *(tuple(r) for r in rows)]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]

    def line(row: tuple[str, ...]) -> str:
        cells = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        return "  ".join(cells).rstrip()

    return "\n".join(line(row) for row in table)
