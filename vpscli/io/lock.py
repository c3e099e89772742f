"""One writer per output: a lock file beside what a vps process writes, holding its pid and host.

``vps segment`` takes ``OUT/.<name>.lock`` for each video folder it writes (``OUT/<name>/``, staging and
resume included) and ``OUT/.batch.json.lock`` while it merges ``batch.json``. A second writer is
refused with the holder's pid and host. A lock whose process is gone (killed, the machine restarted) is
stale: a process on the same host takes it over with a note. On another host vps cannot tell whether
the holder still runs, so it refuses and says which file to delete once it is sure.

Liveness on the same host: the pid exists, has not exited (a zombie not yet collected by its parent holds
nothing) and, on Linux, its start time (``/proc/<pid>/stat``) is the one recorded, so a pid reused by
another program does not keep a stale lock alive.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

from vpscli.errors import OutputError

__all__ = ["OutputLock", "lock_path"]


def lock_path(folder: Path) -> Path:
    """The lock file of ``folder`` (``OUT/<name>`` → ``OUT/.<name>.lock``): beside it, so it exists before
    the folder does and outlives a swap of staged outputs into place."""
    folder = Path(folder)
    return folder.with_name(f".{folder.name}.lock")


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name (Linux), ``None`` where it cannot be read."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()  # after the command name in parentheses: field 3 of stat(5) on


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), ``None`` where it cannot be read."""
    fields = _stat_fields(pid)
    return fields[19] if fields else None  # field 22 of stat(5)


def _exited(pid: int) -> bool:
    """The process has exited and only waits for its parent to collect it (a zombie: a killed Ray worker
    until the raylet reaps it), so it writes nothing any more."""
    fields = _stat_fields(pid)
    return fields[0] in ("Z", "X") if fields else False  # field 3 of stat(5): the state


def _alive(holder: dict) -> bool:
    pid = holder.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    if _exited(pid):
        return False
    recorded, now = holder.get("start"), _start_time(pid)
    return recorded is None or now is None or recorded == now


class OutputLock:
    """``with OutputLock(folder) as lock:`` — hold ``folder``'s lock while writing it.

    Attributes:
        note: set when a stale lock was taken over (what it was), else ``None``.

    Raises:
        OutputError: another live vps process holds the lock (its pid and host named).
    """

    def __init__(self, folder: str | Path, what: str = "this folder"):
        self.folder, self.path, self.what = Path(folder), lock_path(Path(folder)), what
        self.note: str | None = None
        self._held = self._made_parent = False

    def __repr__(self) -> str:
        return f"OutputLock({str(self.folder)!r}, held={self._held})"

    def _holder(self) -> dict:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def acquire(self) -> "OutputLock":
        host = socket.gethostname()
        me = {"pid": os.getpid(), "host": host, "start": _start_time(os.getpid())}
        self._made_parent = not self.path.parent.exists()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                self._take_over_if_stale(host)
                continue
            except OSError as e:
                raise OutputError(
                    f"cannot create a lock file ({e.strerror or e})",
                    path=self.path,
                    fix="check the output folder is writable",
                ) from None
            with os.fdopen(fd, "w") as f:
                f.write(json.dumps(me) + "\n")
            self._held = True
            return self
        raise OutputError(
            "another vps keeps taking this folder's lock", path=self.path, fix="run one vps per output folder"
        )

    def _take_over_if_stale(self, host: str) -> None:
        holder = self._holder()
        where = f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}"
        try:
            age = time.time() - self.path.stat().st_mtime
        except FileNotFoundError:
            return
        if not holder and age < 10:  # created a moment ago, its writer not done yet
            raise OutputError(
                f"another vps is starting to write {self.what}",
                path=self.folder,
                fix="run one vps per output folder",
            )
        if holder and holder.get("host") != host:
            raise OutputError(
                f"another vps ({where}) is writing {self.what}",
                path=self.folder,
                fix=f"wait for it to finish; if no vps runs there any more, delete {self.path}",
            )
        if holder and _alive(holder):
            raise OutputError(
                f"another vps ({where}) is writing {self.what}",
                path=self.folder,
                fix="wait for it to finish, or stop it and use --resume",
            )
        self.note = (
            f"took over the lock of a vps that is no longer running ({where})"
            if holder
            else "took over an unreadable lock file"
        )
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass

    def release(self) -> None:
        if self._held:
            self._held = False
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass
            if self._made_parent:  # a run that wrote nothing leaves no empty output root behind
                try:
                    self.path.parent.rmdir()
                except OSError:
                    pass

    def __enter__(self) -> "OutputLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
