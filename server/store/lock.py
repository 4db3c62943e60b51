"""One embedded server per DATA_DIR: an exclusive lock on a file in it, held for
the life of the process.

Two processes writing the same SQLite files would each hand out the same `seq`
and question ids from their own memory; the second one is refused at start.
The lock is the kernel's (`flock`), so it goes away with the process, even
after kill -9: a stale lock file never blocks a restart.
"""

import fcntl
import os
from pathlib import Path
from typing import IO

LOCK_FILE = "leitai.lock"
_held: dict[str, IO[str]] = {}  # path -> the open file that holds the lock (this process)


class DataDirInUse(RuntimeError):
    """Another process serves this DATA_DIR."""


def lock_data_dir(data_dir: Path) -> None:
    """Take the DATA_DIR's lock for this process (again: a no-op), or raise DataDirInUse."""
    path = str((data_dir / LOCK_FILE).resolve())
    if path in _held:
        return
    f = open(path, "a+")  # noqa: SIM115 - kept open for the life of the process
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)  # guard: one server per data dir
    except BlockingIOError:
        f.seek(0)
        holder = f.read().strip() or "?"
        f.close()
        raise DataDirInUse(
            f"DATA_DIR {data_dir.resolve()} is in use by another Leitai server (pid {holder}). "
            "One embedded server per DATA_DIR: stop the other one, give this one its own DATA_DIR, "
            "or run several processes on one Redis (REDIS_URL)."
        ) from None
    f.truncate(0)
    f.write(str(os.getpid()))
    f.flush()
    _held[path] = f
