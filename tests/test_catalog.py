"""The catalog is the one source of truth: it must agree with the reference command list, and
everything generated from it (handlers, README table) must agree with it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import schemas
from bridge.server.commands import handler_for

CATALOG = schemas.load()
ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT.parent / "shared" / "seeds" / "eufy-security-ws-commands.txt"

# Where the catalog says more than the reference list, on purpose.
EXTRA_PARAMS = {("station.disconnect", "serialNumber")}
SEED_TYPES = {
    "string": {"string"},
    "number": {"number", "integer"},
    "boolean": {"boolean"},
    "Buffer": {"buffer"},
    "Date": {"date"},
    "unknown": {"any"},
    "Array<number>": {"array"},
    "EventFilterType": {"object"},
    "Schedule": {"object"},
    "PanTiltDirection": {"integer"},
    "FilterEventType": {"integer"},
    "FilterDetectType": {"integer"},
    "FilterStorageType": {"integer"},
}


def parse_seed(text: str) -> dict[str, dict]:
    """Commands of the reference list: schema range, parameters and result fields."""
    commands: dict[str, dict] = {}
    for block in re.split(r"\n### ", text)[1:]:
        name_match = re.search(r'command: "([^"]+)"', block)
        if not name_match:
            continue
        schema = re.search(r"compatible with schema version: (\d+)(?:\+|-(\d+))", block)
        low, high = (int(schema.group(1)), schema.group(2)) if schema else (0, None)
        interface, _, returns = block.partition("Returns:")
        params = {}
        for field, optional, kind in re.findall(r"^[ \t]+(\w+)(\??): ([^;]+);", interface, re.M):
            if field not in ("messageId", "command"):
                params[field] = (optional != "?", kind.strip())
        result = {}
        for field, since in re.findall(
            r"^[ \t]+(\w+): [^;\n]+;?(?:[ \t]*// \[added with schema version: (\d+)\+\])?",
            returns,
            re.M,
        ):
            result[field] = int(since or 0)
        commands[name_match.group(1)] = {
            "range": (low, None if high is None else int(high)),
            "params": params,
            "result": result,
        }
    return commands


@pytest.fixture(scope="module")
def seed() -> dict[str, dict]:
    if not SEED.exists():
        pytest.skip(f"the reference command list is not beside this checkout ({SEED})")
    return parse_seed(SEED.read_text(encoding="utf-8"))


def test_the_catalog_has_exactly_the_commands_of_the_reference(seed):
    assert set(CATALOG.commands) == set(seed)
    assert len(seed) == 83


def test_schema_ranges_match_the_reference(seed):
    for name, spec in CATALOG.commands.items():
        assert (spec.min_schema, spec.max_schema) == seed[name]["range"], name


def test_parameters_match_the_reference(seed):
    for name, spec in CATALOG.commands.items():
        ours = {p.name: p for p in spec.params if (name, p.name) not in EXTRA_PARAMS}
        theirs = seed[name]["params"]
        assert set(ours) == set(theirs), name
        for param, (required, kind) in theirs.items():
            assert ours[param].required == required, (name, param)
            if kind.startswith('"'):  # a union of string literals
                assert ours[param].enum == tuple(re.findall(r'"(\w+)"', kind)), (name, param)
            else:
                assert ours[param].type in SEED_TYPES[kind], (name, param, kind)


def test_result_fields_match_the_reference(seed):
    for name, spec in CATALOG.commands.items():
        ours = {f.name: f.since for f in spec.result if not f.is_async}
        if name == "start_listening":
            continue  # the reference list documents no result for it; PROTOCOL.md §1 does
        assert ours == seed[name]["result"], name


def test_every_command_has_a_handler():
    for spec in CATALOG.commands.values():
        if spec.target == "server":
            continue
        assert handler_for(spec) is not None, spec.name


def test_query_commands_have_their_own_handlers():
    """Only actions may fall back to the generic backend call."""
    from bridge.server.commands import HANDLERS

    for spec in CATALOG.commands.values():
        if spec.kind == "query" and spec.target != "server":
            assert spec.name in HANDLERS, spec.name


def test_every_error_code_is_raisable():
    from bridge.driver import errors

    raised = {cls.code for cls in vars(errors).values()
              if isinstance(cls, type) and issubclass(cls, errors.BridgeError)}
    assert raised - set(CATALOG.error_codes) == set()


def test_events_the_driver_emits_are_in_the_catalog():
    source = "\n".join(p.read_text() for p in (ROOT / "bridge").rglob("*.py"))
    for source_name, event in re.findall(r'publish\(\s*"(\w+)",\s*"([^"]+)"', source):
        assert (source_name, event) in CATALOG.events, (source_name, event)


def test_the_readme_generated_sections_are_current():
    from bridge.docs import render

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert readme == render(readme), "run: python -m bridge.docs README.md"
