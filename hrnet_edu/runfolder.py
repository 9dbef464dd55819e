"""A training run's folder: one run at a time, nothing replaced by halves, nothing lost by mistake.

* ``RunLock``: ``OUT/.hrnet-edu.lock`` holds the running process's PID under an exclusive
  ``flock``; a second run into the folder is refused, naming that PID. The kernel drops the lock
  when its holder dies, however it dies, so a lock file left by a killed run (a dead PID) is
  simply taken over. (Where ``fcntl`` does not exist the PID in the file is checked instead.)
* ``check_run_folder``: ``OUT`` must be a folder; starting afresh in a folder that holds a run
  needs ``overwrite``, resuming needs its ``last.pt``.
* ``atomic_write``: every file the trainer writes (checkpoints, ``log.jsonl``, ``config.json``)
  is written to a temporary file of this process and moved over the old one with ``os.replace``,
  so a kill at any moment leaves the previous complete file. ``clean_stale_temporaries`` removes
  the temporary files such a kill leaves behind.

No torch here: the lock is taken before anything heavy is imported or built.
"""

from __future__ import annotations

import contextlib
import json
import os
import time

from hrnet_edu.errors import InputError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

LOCK_NAME = ".hrnet-edu.lock"
RUN_FILES = ("last.pt", "best.pt", "log.jsonl", "config.json")
# How long a lock left by a dead process's orphaned workers is waited for before refusing.
ORPHAN_WAIT_S = 20.0


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, another user's
        return True
    return True


def _read_pid(path: str) -> int | None:
    try:
        with open(path) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


class RunLock:
    """The exclusive right to write into ``out_dir``; ``acquire`` or InputError, ``release`` at the end."""

    def __init__(self, out_dir: str):
        self.out_dir, self.path = out_dir, os.path.join(out_dir, LOCK_NAME)
        self.fd: int | None = None
        self.taken_over: int | None = None  # the dead PID of a stale lock that was taken over

    def _refuse(self, pid) -> InputError:
        who = f"process {pid}" if pid is not None else "another process"
        return InputError(f"run folder {self.out_dir} is in use by {who} (lock file {self.path}): wait for "
                          "it to end or choose another --out")

    def acquire(self) -> RunLock:
        if fcntl is None:
            return self._acquire_by_pid()
        deadline = time.monotonic() + ORPHAN_WAIT_S
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                pid = _read_pid(self.path)
                if pid is not None and not _pid_alive(pid) and time.monotonic() < deadline:
                    # the holder is dead but its forked data-loader workers still hold the lock's
                    # file until they notice (seconds after a SIGKILL): wait for them, do not refuse
                    time.sleep(0.25)
                    continue
                raise self._refuse(pid) from None
            # A holder that was releasing may have unlinked the file between our open and flock:
            # then we hold a lock on a file nobody else will see; start again.
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        previous = _read_pid(self.path)
        self.taken_over = previous if previous is not None and previous != os.getpid() else None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.fd = fd
        return self

    def _acquire_by_pid(self) -> RunLock:
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                pid = _read_pid(self.path)
                if pid is not None and _pid_alive(pid):
                    raise self._refuse(pid) from None
                self.taken_over = pid
                with contextlib.suppress(FileNotFoundError):
                    os.remove(self.path)
                continue
            os.write(fd, f"{os.getpid()}\n".encode())
            self.fd = fd
            return self
        raise self._refuse(_read_pid(self.path))

    def release(self) -> None:
        if self.fd is None:
            return
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.path)  # while still holding the lock (see ``acquire``)
        os.close(self.fd)
        self.fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def check_run_folder(out_dir: str, resume: bool, overwrite: bool) -> None:
    """InputError unless ``out_dir`` can take this run; reads only, writes nothing (``overwrite`` has
    no effect with ``resume``)."""
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise InputError(f"--out {out_dir} exists and is not a folder")
    present = [name for name in RUN_FILES if os.path.exists(os.path.join(out_dir, name))]
    if resume and "last.pt" not in present:
        raise InputError(f"cannot resume: no last.pt in {out_dir} (start without --resume)")
    if not resume and present and not overwrite:
        if "last.pt" not in present:  # nothing to resume from: do not advise --resume
            raise InputError(f"{out_dir} holds a run that ended before its first checkpoint "
                             f"({', '.join(present)}): --overwrite starts it afresh, or choose another --out")
        raise InputError(f"{out_dir} holds a run ({', '.join(present)}): --resume continues it, "
                         "--overwrite replaces it, or choose another --out")


def _temporary_name(path: str) -> str:
    # one name per process, so that two writers (which the lock forbids anyway) never share one
    return f"{path}.{os.getpid()}.tmp"


def atomic_write(path: str, write) -> None:
    """``write(tmp_path)`` then move ``tmp_path`` over ``path``: readers see the old or the new file.

    The data is flushed to the disk (``fsync``) before the move, so that after a power cut the
    name does not point at a file whose blocks were never written.
    """
    tmp = _temporary_name(path)
    try:
        write(tmp)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def atomic_write_text(path: str, text: str) -> None:
    def write(tmp):
        with open(tmp, "w") as f:
            f.write(text)

    atomic_write(path, write)


def clean_stale_temporaries(out_dir: str) -> list[str]:
    """Remove the temporary files of the run files that a killed run left; returns their names."""
    removed = []
    if not os.path.isdir(out_dir):
        return removed
    for name in os.listdir(out_dir):
        if name.endswith(".tmp") and name.startswith(tuple(f + "." for f in RUN_FILES)):
            with contextlib.suppress(FileNotFoundError):
                os.remove(os.path.join(out_dir, name))
                removed.append(name)
    return removed


def read_log(path: str) -> list[dict]:
    """The records of a run's ``log.jsonl``, one JSON object a line (blank lines skipped).

    InputError "PATH line N: not a JSON record (...)" for a damaged line: a resume, a figure or a
    report never reads past it silently.
    """
    records = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise InputError(f"{path} line {n}: not a JSON record ({err.msg})") from None
    return records


def append_log_record(path: str, record: dict) -> None:
    """Append one JSON record as a line to ``log.jsonl`` and flush it, so that a long run's progress is
    on disk as it goes; the epoch's checkpoint then rewrites the whole log atomically."""
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")
