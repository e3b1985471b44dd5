"""Configuration: file, environment and flags, and clear errors for bad values."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bridge.settings import ConfigError, has_configuration, load_settings


def test_defaults(monkeypatch):
    settings = load_settings()
    assert settings.server.host == "127.0.0.1"
    assert settings.server.port == 3000
    assert settings.log.level == "info"
    assert settings.doorbird == [] and settings.skybell == []


def test_file_then_environment_then_flags(tmp_path, monkeypatch):
    config = tmp_path / "bridge.yaml"
    config.write_text("server:\n  host: 0.0.0.0\n  port: 4000\nlog:\n  level: debug\n")
    assert load_settings(config).server.port == 4000
    monkeypatch.setenv("EUFY_BRIDGE_SERVER__PORT", "4001")
    monkeypatch.setenv("EUFY_BRIDGE_LOG__FORMAT", "json")
    settings = load_settings(config)
    assert (settings.server.host, settings.server.port) == ("0.0.0.0", 4001)
    assert (settings.log.level, settings.log.format) == ("debug", "json")
    assert load_settings(config, **{"server.port": 4002}).server.port == 4002


def test_json_files_work(tmp_path):
    config = tmp_path / "bridge.json"
    config.write_text(json.dumps({"server": {"port": 4100}}))
    assert load_settings(config).server.port == 4100


def test_list_sections_from_the_environment(monkeypatch):
    monkeypatch.setenv("EUFY_BRIDGE_DOORBIRD",
                       json.dumps([{"host": "192.0.2.5", "username": "u", "password": "pw-9731"}]))
    settings = load_settings()
    assert settings.doorbird[0].host == "192.0.2.5"
    assert settings.doorbird[0].event_ports == [6524, 35344]
    assert "pw-9731" not in repr(settings)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("server:\n  port: 70000\n", "server.port: Input should be less than or equal to 65535"),
        ("server:\n  prot: 1\n", "server.prot: unknown key"),
        ("log:\n  level: verbose\n", "log.level: Input should be"),
        ("server: [1, 2]\n", "server: Input should be"),
        ("- 1\n- 2\n", "the top level must be a mapping"),
        ("server: {port: [\n", "not valid YAML or JSON"),
        ("skybell:\n  - email: a@b.c\n", "skybell.0: Value error, give api_key, or email and"),
        ("doorbird:\n  - host: x\n", "doorbird.0.username: Field required"),
        ("doorbird:\n  - {host: x, username: u, password: p, events: http}\n",
         'events "http" needs callback_url'),
    ],
)
def test_bad_configuration_names_the_key(tmp_path, text, message):
    config = tmp_path / "bad.yaml"
    config.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    assert message in str(caught.value)
    assert str(config) in str(caught.value)


def test_secrets_are_not_echoed_in_errors(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("skybell:\n  - api_key: s3cr3t-key\n    poll_interval: 0\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    assert "s3cr3t" not in str(caught.value)


def test_a_missing_file_is_reported(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "absent.yaml")


def test_has_configuration(monkeypatch, tmp_path):
    for key in [k for k in __import__("os").environ if k.startswith("EUFY_BRIDGE_")]:
        monkeypatch.delenv(key)
    assert has_configuration(None) is False
    assert has_configuration(tmp_path / "x.yaml") is True
    monkeypatch.setenv("EUFY_BRIDGE_SERVER__PORT", "1")
    assert has_configuration(None) is True


def run_cli(*args: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bridge", *args], capture_output=True,
                          text=True, timeout=timeout)


def test_the_command_line_refuses_a_bad_file_with_status_2(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("server:\n  port: -1\n")
    result = run_cli("--config", str(config))
    assert result.returncode == 2
    assert "server.port" in result.stderr


def test_the_command_line_rejects_unknown_log_levels():
    result = run_cli("--log-level", "verbose")
    assert result.returncode == 2
    assert "invalid choice" in result.stderr
