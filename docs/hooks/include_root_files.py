"""MkDocs hook: render the README's install steps and CHANGELOG.md as pages of the site.

Both files are written for readers of the repository, so their links to ``docs/x.md`` are made
relative to the site's pages here; the text itself is kept in one place only.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MARKER = "<!-- include: {name} -->"


def _install_steps() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(
        r"<!-- --8<-- \[start:install\] -->\n(.*?)<!-- --8<-- \[end:install\] -->", readme, re.S
    )
    if match is None:
        raise ValueError("README.md has no install section between the include markers")
    return match.group(1)


def _changelog() -> str:
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    return text.split("\n", 1)[1]  # the page has its own title


def _site_links(text: str) -> str:
    """Links written from the repository's root, as written from the docs directory."""
    text = text.replace("](docs/", "](")
    return text.replace("](CHANGELOG.md)", "](changelog.md)")


SOURCES = {"install": _install_steps, "changelog": _changelog}


def on_page_markdown(markdown: str, page, config, files) -> str:
    for name, source in SOURCES.items():
        marker = MARKER.format(name=name)
        if marker in markdown:
            markdown = markdown.replace(marker, _site_links(source()))
    return markdown
