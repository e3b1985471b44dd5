"""A configuration file that is not YAML is reported by place and problem, never by quoting the
line: the line may hold a password."""

from __future__ import annotations

import subprocess
import sys
import traceback

import pytest

from bridge.settings import ConfigError, load_settings

SECRET = "hunter2-Sup3rSecret"


@pytest.mark.parametrize(("text", "line", "column"), [
    (f"doorbird:\n  - host: [192.0.2.4\n    password: {SECRET}\n", 3, 13),
    (f'doorbird:\n  - host: 192.0.2.4\n    password: "{SECRET}\n', 4, 1),
    (f"doorbird:\n  - host: 192.0.2.4\n    password: *{SECRET}\n", 3, 15),
    (f"doorbird:\n  - host: 192.0.2.4\n   password: {SECRET}: x\n", 3, 4),
])
def test_a_yaml_syntax_error_names_file_line_and_column_but_never_the_line(
        tmp_path, text, line, column):
    path = tmp_path / "bridge.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_settings(path)
    message = str(raised.value)
    assert message.startswith(f"{path}: not valid YAML or JSON at line {line}, column {column}: ")
    shown = "".join(traceback.format_exception(raised.value))  # what a crash would print
    assert SECRET not in shown and SECRET[:5] not in shown


def test_the_command_line_reports_a_broken_file_without_its_secret(tmp_path):
    path = tmp_path / "bridge.yaml"
    path.write_text(f"doorbird:\n  - host: [192.0.2.4\n    password: {SECRET}\n",
                    encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "bridge", "--check-config", str(path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "line 3, column 13" in done.stdout + done.stderr
    assert SECRET not in done.stdout + done.stderr
