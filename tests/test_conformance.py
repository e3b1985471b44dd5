"""The conformance suite passes against the bridge, and fails against a server that breaks
the protocol (so a pass means something)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import schemas
from bridge.driver.errors import UnknownCommand
from bridge.server.server import BridgeServer
from conformance.checks import Suite

CATALOG = schemas.load()


async def test_the_bridge_passes_every_check(bridge):
    results = await Suite(bridge.url, writes=True).run()
    failed = [c for c in results if c.status == "fail"]
    assert failed == []
    names = {c.name for c in results}
    assert len(results) > 400
    assert "device.get_properties result shape" in names
    assert "property changed shape" in names
    assert {"livestream video data arrives", "a second start_livestream",
            "device.talkback_audio_data without a start"} <= names
    assert [c for c in results if c.status == "skip"] == []


async def test_the_suite_catches_a_server_without_schema_gating(bridge, monkeypatch):
    def no_gating(self, conn, message):
        spec = CATALOG.command(message.get("command"))
        if spec is None:
            raise UnknownCommand()
        return spec

    monkeypatch.setattr(BridgeServer, "_gate", no_gating)
    results = await Suite(bridge.url).run()
    failed = {c.name for c in results if c.status == "fail"}
    assert "device.unlock gated" in failed
    assert "driver.get_log_level gated" in failed


async def test_the_suite_catches_a_server_that_keeps_rejected_schemas(bridge, monkeypatch):
    def keep_any(self, conn, version):
        conn.schema = version if isinstance(version, int) else conn.schema
        return {}

    monkeypatch.setattr(BridgeServer, "_set_api_schema", keep_any)
    results = await Suite(bridge.url).run()
    failed = {c.name for c in results if c.status == "fail"}
    assert "set_api_schema rejects 22" in failed


async def test_the_command_line_prints_a_table_and_writes_a_report(bridge, tmp_path):
    report = tmp_path / "report.json"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "conformance", bridge.url, "--report", str(report),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, stderr.decode()
    out = stdout.decode()
    assert "check" in out.splitlines()[0] and "0 failed" in out
    rows = json.loads(report.read_text())
    assert rows and all(row["status"] in ("pass", "skip") for row in rows)


def test_the_suite_does_not_import_the_bridge():
    code = ("import sys, conformance.checks, conformance.session, conformance.__main__; "
            "sys.exit(any(m == 'bridge' or m.startswith('bridge.') for m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


async def test_the_demo_house_passes_every_check(demo):
    results = await Suite(demo.url, writes=True).run()
    failed = [c for c in results if c.status == "fail"]
    assert failed == []
    assert [c for c in results if c.status == "skip"] == []
