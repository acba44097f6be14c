"""A small table printer, and the one-line verdict each benchmark gives on its goal."""

from __future__ import annotations

from collections.abc import Sequence

#: Prefix of verdict lines; ``__main__`` collects them into the closing summary.
GOAL_PREFIX = "GOAL"


def print_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Columns padded to their widest cell; numbers right-aligned, text left-aligned."""
    cells = [[str(h) for h in headers], *[[_cell(value) for value in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    numeric = [
        all(_is_number(row[i]) for row in rows) if rows else False for i in range(len(headers))
    ]

    def line(row: Sequence[str]) -> str:
        parts = [
            cell.rjust(width) if is_number else cell.ljust(width)
            for cell, width, is_number in zip(row, widths, numeric, strict=True)
        ]
        return "| " + " | ".join(parts) + " |"

    print(f"\n{title}")
    print(line(cells[0]))
    print("|" + "|".join("-" * (width + 2) for width in widths) + "|")
    for row in cells[1:]:
        print(line(row))


def print_goal(name: str, goal: str, met: bool, measured: str) -> None:
    """``GOAL [MET|MISSED] name: goal; measured`` — one line, easy to find and to summarise."""
    verdict = "MET" if met else "MISSED"
    print(f"{GOAL_PREFIX} [{verdict}] {name}: {goal}; measured {measured}", flush=True)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float)
