"""Small JSON state files in the data directory (tokens, event cursors) that survive restarts.

Files are written atomically (a temporary file renamed over the old one) and readable by their
owner only, since some hold credentials.  A file that cannot be read back is reported, set
aside as ``<name>.corrupt`` and started afresh; it never stops the bridge.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import structlog

log = structlog.get_logger(component="bridge.storage")


class StateStore:
    """One directory of named JSON documents."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory).expanduser()

    def _path(self, name: str) -> Path:
        if not name or "/" in name or name.startswith("."):
            raise ValueError(f"not a state file name: {name!r}")
        return self.directory / f"{name}.json"

    def load(self, name: str) -> dict[str, Any]:
        path = self._path(name)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.error("state file unreadable, starting afresh", file=str(path), error=str(exc))
            self._set_aside(path)
            return {}
        if not isinstance(data, dict):
            log.error("state file holds no object, starting afresh", file=str(path))
            self._set_aside(path)
            return {}
        return data

    def save(self, name: str, data: dict[str, Any]) -> None:
        path = self._path(name)
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, temporary = tempfile.mkstemp(dir=self.directory, prefix=f".{name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(data, handle, separators=(",", ":"))
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(temporary, 0o600)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    @staticmethod
    def _set_aside(path: Path) -> None:
        with contextlib.suppress(OSError):
            os.replace(path, path.with_suffix(".corrupt"))
