"""The README's command table, generated from the catalog (``python -m schemas.table``
prints it; ``python -m bridge.docs README.md`` rewrites the README's generated sections)."""

from __future__ import annotations

from schemas import load


def _range(low: int, high: int | None) -> str:
    return f"{low}+" if high is None else f"{low}-{high}"


def command_table() -> str:
    catalog = load()
    rows = [
        "| Command | Schemas | Parameters | Result | What it does |",
        "| --- | --- | --- | --- | --- |",
    ]
    for spec in catalog.commands.values():
        params = ", ".join(
            f"`{p.name}`" if p.required else f"`{p.name}?`" for p in spec.params
        ) or "-"
        result = ", ".join(
            f"`{f.name}`" + (f" ({_range(f.since, f.until)})" if f.since or f.until else "")
            for f in spec.result
        ) or "`{}`"
        rows.append(
            f"| `{spec.name}` | {_range(spec.min_schema, spec.max_schema)} | {params} "
            f"| {result} | {spec.summary} |"
        )
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(command_table(), end="")
