"""The README's install snippets, as the files of a host project they are pasted into.

Each snippet the README means to be pasted is preceded by ``<!-- readme-host: FILE -->`` (or
``<!-- readme-host: FILE (VARIANT) -->`` for an optional one, such as the database task backend).
The README-driven host test builds a project from them; nothing here holds a copy of them.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"

_BLOCK = re.compile(
    r"^[ \t]*<!-- readme-host: (?P<target>\S+)(?: \((?P<variant>[^)]+)\))? -->[ \t]*\n"
    r"(?P<fence>[ \t]*```)[\w-]*\n(?P<code>.*?)\n(?P=fence)[ \t]*$",
    re.M | re.S,
)


@dataclass(frozen=True)
class Block:
    target: str  # the file, relative to the project's root
    variant: str | None  # None: always pasted; else only for that variant
    code: str


def blocks(text: str | None = None) -> list[Block]:
    """The marked code blocks of the README, in order, dedented as a list item's code is."""
    text = README.read_text(encoding="utf-8") if text is None else text
    return [
        Block(match["target"], match["variant"], textwrap.dedent(match["code"]) + "\n")
        for match in _BLOCK.finditer(text)
    ]


def files(variants: frozenset[str] = frozenset()) -> dict[str, str]:
    """What each target file gets: its blocks for ``variants`` (and the unmarked ones), joined."""
    result: dict[str, str] = {}
    for block in blocks():
        if block.variant is None or block.variant in variants:
            result[block.target] = result.get(block.target, "") + "\n" + block.code
    return result
