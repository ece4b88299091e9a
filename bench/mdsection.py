"""BENCHMARKS.md is shared: each benchmark owns one section between marker comments.

`replace_section(path, "gateway-proxy", text)` rewrites only the text between
`<!-- BEGIN gateway-proxy -->` and `<!-- END gateway-proxy -->` (appending the section if it
is not there yet), so one benchmark never clobbers another's figures.
"""

from __future__ import annotations

import os
from pathlib import Path

TITLE = "# Benchmarks\n\nFigures from `make bench` (bench/). Each section is rewritten by its own benchmark.\n"


def markers(name: str) -> tuple[str, str]:
    return f"<!-- BEGIN {name} -->", f"<!-- END {name} -->"


def replace_section(path: Path, name: str, text: str) -> None:
    begin, end = markers(name)
    block = f"{begin}\n{text.rstrip()}\n{end}\n"
    current = path.read_text(encoding="utf-8") if path.exists() else TITLE
    start = current.find(begin)
    stop = current.find(end, start + len(begin)) if start >= 0 else -1
    if start >= 0 and stop >= 0:
        after = current[stop + len(end):].lstrip("\n")
        updated = current[:start] + block + ("\n" + after if after else "")
    else:
        updated = current.rstrip("\n") + "\n\n" + block
    # Write beside and rename: a reader (or the other benchmark) never sees half a file.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(updated, encoding="utf-8")
    tmp.replace(path)
