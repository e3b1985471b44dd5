"""Regenerate the README's generated sections: ``python -m bridge.docs README.md``.

The command table comes from the catalog, the configuration reference from the settings model
and each vendor's property table from the metadata the bridge serves, so the README cannot
drift from any of them (a test compares them).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

from bridge.docs.properties import property_tables
from bridge.settings import reference_table
from schemas.table import command_table

_tables = cache(property_tables)

SECTIONS: dict[str, Callable[[], str]] = {
    "commands": command_table,
    "settings": reference_table,
    "doorbird-properties": lambda: _tables()["doorbird"],
    "skybell-properties": lambda: _tables()["skybell"],
}


def render(text: str) -> str:
    for name, make in SECTIONS.items():
        begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
        head, rest = text.split(begin, 1)
        _, tail = rest.split(end, 1)
        text = f"{head}{begin}\n{make()}{end}{tail}"
    return text
