"""Small JSON state files in the data directory (tokens, event cursors) that survive restarts.

Files are written atomically (a temporary file, flushed to disk, renamed over the old one) and
readable by their owner only, since some hold credentials; the directory is made owner-only
too, even when it already existed.  A file that cannot be read back is reported, set aside as
``<name>.corrupt`` and started afresh; it never stops the bridge.

Writing waits for the disk (``fsync``), so inside the event loop it happens on one writer
thread, in order, and a document saved again before its turn is written once, in its newest
version.  Until it is on disk, ``load`` answers from the pending version, so every reader in
the process sees what was last saved; ``flush`` waits for the writer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import structlog

log = structlog.get_logger(component="bridge.storage")

# One writer for the process: few, small documents; order matters more than parallelism.
_writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="state-writer")
_pending: dict[Path, str] = {}
_pending_lock = threading.Lock()


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
        with _pending_lock:
            text = _pending.get(path)
        try:
            data = json.loads(text if text is not None else path.read_text(encoding="utf-8"))
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
        """Save a document: at once outside an event loop, on the writer thread inside one."""
        path = self._path(name)
        text = json.dumps(data, separators=(",", ":"))
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            _write(path, text)
            return
        with _pending_lock:
            queued = path in _pending
            _pending[path] = text
        if not queued:
            _writer.submit(_write_pending, path)

    async def flush(self) -> None:
        """Wait until everything saved so far is on disk."""
        while True:
            await asyncio.wrap_future(_writer.submit(lambda: None))
            with _pending_lock:
                if not _pending:
                    return

    @staticmethod
    def _set_aside(path: Path) -> None:
        with contextlib.suppress(OSError):
            os.replace(path, path.with_suffix(".corrupt"))


def _write_pending(path: Path) -> None:
    with _pending_lock:
        text = _pending.get(path)
    if text is None:
        return
    try:
        _write(path, text)
    except OSError as exc:
        log.error("state file not written", file=str(path), error=str(exc))
    finally:
        with _pending_lock:
            if _pending.get(path) is text:  # not saved again meanwhile
                del _pending[path]
            else:
                _writer.submit(_write_pending, path)


def _write(path: Path, text: str) -> None:
    directory = path.parent
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    if directory.stat().st_mode & 0o077:
        os.chmod(directory, 0o700)  # it may hold tokens: nobody else may list or read it
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=f".{path.stem}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
