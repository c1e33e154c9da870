"""Reading Markdown pages in tests: the README and the pages under docs/ quote code and output that tests run."""

from __future__ import annotations


def fences(text: str) -> list[tuple[str, str]]:
    """Every fenced block of a Markdown page as (info string, body), in page order."""
    blocks: list[tuple[str, str]] = []
    info: str | None = None
    body: list[str] = []
    for line in text.splitlines(keepends=True):
        if info is None:
            if line.startswith("```"):
                info, body = line[3:].strip(), []
        elif line.rstrip("\n") == "```":
            blocks.append((info, "".join(body)))
            info = None
        else:
            body.append(line)
    return blocks
