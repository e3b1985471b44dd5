"""Regenerate the README's generated sections: ``python -m bridge.docs README.md``.

The command table comes from the catalog and the configuration reference from the settings
model, so the README cannot drift from either (a test compares them).
"""

from __future__ import annotations

import sys
from pathlib import Path

from bridge.settings import reference_table
from schemas.table import command_table

SECTIONS = {"commands": command_table, "settings": reference_table}


def render(text: str) -> str:
    for name, make in SECTIONS.items():
        begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
        head, rest = text.split(begin, 1)
        _, tail = rest.split(end, 1)
        text = f"{head}{begin}\n{make()}{end}{tail}"
    return text


if __name__ == "__main__":
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "README.md")
    path.write_text(render(path.read_text(encoding="utf-8")), encoding="utf-8")
