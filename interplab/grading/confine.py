"""Inside the sandbox: apply the limits, run the notebook's runner, and hand its results out.

    python -m interplab.grading.confine --memory B --processes N --file-size B [--uid UID]
        [--private DIR --results-fd FD --seconds S --copy-bytes B] -- CMD...

With ``--private`` it is the sandbox's process 1 (bubblewrap ``--as-pid-1``), the one process
a submission cannot signal, and it supervises the run:

1. it copies the grader's inputs from the host folder (open as ``FD``) into ``DIR``, a tmpfs of
   bounded size mounted over that same path, so all a submission writes stays in bounded RAM;
2. it runs ``CMD`` as the unprivileged user, under the limits, its output into a pipe of which
   only the last lines are kept, and the executed notebook into another (``NOTEBOOK_FD``);
3. when ``CMD`` ends, or after ``S`` seconds, it kills every other process of the sandbox;
4. it writes into ``FD`` what the grader reads: the executed notebook and the recorded
   answers, each at most ``B`` bytes (a symlink, folder or FIFO is recreated as what it is, for
   the grader to refuse), then ``run.json``, which says how the run ended.

It makes itself non-dumpable, so a submission running as the same user (unprivileged
bubblewrap) can neither trace it nor open its file descriptors; the results folder is reachable
only through ``FD``, which ``CMD`` does not inherit.

Without ``--private`` (bubblewrap unavailable) it applies the limits and becomes ``CMD``.

A warm run (``interplab.grading.warm``) is supervised by the same code (``supervise``), in a
process forked from its zygote rather than started by bubblewrap, with these same options; its
runner runs in confine's fork instead of exec'ing ``CMD``.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import resource
import select
import signal
import stat
import sys
import time
import traceback
from collections.abc import Callable
from typing import NoReturn

#: Bytes of the runner's output kept for the grader (its last lines say why a run failed).
LOG_TAIL_BYTES = 4000
#: A tmpfs with less free space than this after the run was filled by the submission.
FULL_BELOW = 1024**2
#: Entries copied back per folder, and bytes in all: a recording is a dozen small files.
MAX_ENTRIES = 256
MAX_TOTAL_BYTES = 512 * 1024**2
#: Seconds the processes left after the runner get to die before the copy starts regardless.
REAP_SECONDS = 5.0
#: What the grader reads back from the private folder, besides the executed notebook.
RESULTS = ("answers",)
#: The executed notebook, which the runner writes into a pipe (as ``NOTEBOOK_FD``), not into
#: the private folder: a submission that filled its folder still gets its outputs shown.
NOTEBOOK = "executed.ipynb"
NOTEBOOK_FD = 3
REPORT = "run.json"


def limit(args) -> None:
    """Become the unprivileged user (when root) with the run's limits; the first to be killed
    when memory runs out, before the supervisor or the grader."""
    try:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write("1000")
    except OSError:
        pass
    if args.uid is not None:
        os.setgroups([])
        os.setgid(args.uid)
        os.setuid(args.uid)
    resource.setrlimit(resource.RLIMIT_AS, (args.memory, args.memory))
    resource.setrlimit(resource.RLIMIT_NPROC, (args.processes, args.processes))
    resource.setrlimit(resource.RLIMIT_FSIZE, (args.file_size, args.file_size))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def copy_in(src_fd: int, dst: str, uid: int | None) -> None:
    """The grader's inputs (plain files and folders it wrote) into the private tmpfs."""
    for entry in os.scandir(src_fd):
        info = os.stat(entry.name, dir_fd=src_fd, follow_symlinks=False)
        target = os.path.join(dst, entry.name)
        if stat.S_ISDIR(info.st_mode):
            os.mkdir(target, 0o700)
            inner = os.open(entry.name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=src_fd)
            try:
                copy_in(inner, target, uid)
            finally:
                os.close(inner)
        elif stat.S_ISREG(info.st_mode):
            fd = os.open(entry.name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=src_fd)
            with os.fdopen(fd, "rb") as src, open(target, "wb") as out:
                while chunk := src.read(1024**2):
                    out.write(chunk)
        else:
            continue
        if uid is not None:
            os.chown(target, uid, uid)


class CopyOut:
    """Copies results from the private tmpfs into the host folder, bounded in size and count."""

    def __init__(self, out_fd: int, copy_bytes: int):
        self.out_fd = out_fd
        self.copy_bytes = copy_bytes
        self.left = MAX_TOTAL_BYTES

    def entry(self, src_dir: int, name: str, dst_dir: int, depth: int) -> None:
        try:
            info = os.stat(name, dir_fd=src_dir, follow_symlinks=False)
        except OSError:
            return
        mode = info.st_mode
        if stat.S_ISLNK(mode):
            os.symlink(os.readlink(name, dir_fd=src_dir), name, dir_fd=dst_dir)
        elif stat.S_ISFIFO(mode):
            os.mkfifo(name, 0o600, dir_fd=dst_dir)
        elif stat.S_ISDIR(mode):
            os.mkdir(name, 0o700, dir_fd=dst_dir)
            if depth > 0:
                self.folder(src_dir, name, dst_dir, depth - 1)
        elif stat.S_ISREG(mode):
            self.file(src_dir, name, dst_dir, info.st_size)

    def folder(self, src_dir: int, name: str, dst_dir: int, depth: int) -> None:
        src = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=src_dir)
        dst = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dst_dir)
        try:
            for i, entry in enumerate(os.scandir(src)):
                if i >= MAX_ENTRIES:
                    break
                self.entry(src, entry.name, dst, depth)
        finally:
            os.close(src)
            os.close(dst)

    def file(self, src_dir: int, name: str, dst_dir: int, size: int) -> None:
        out = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=dst_dir)
        with os.fdopen(out, "wb") as dst:
            if size > min(self.copy_bytes, self.left):
                dst.truncate(size)  # as large as it claims, and empty: the grader refuses it by size
                return
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=src_dir)
            with os.fdopen(fd, "rb") as src:
                data = src.read(size + 1)[:size]
            self.left -= len(data)
            dst.write(data)

    def results(self, private: str) -> None:
        src = os.open(private, os.O_RDONLY | os.O_DIRECTORY)
        try:
            for name in RESULTS:
                self.entry(src, name, self.out_fd, depth=2)
        finally:
            os.close(src)


def free_bytes(path: str) -> int:
    try:
        info = os.statvfs(path)
    except OSError:
        return 0
    return info.f_bavail * info.f_frsize


class Tail:
    """The last ``size`` bytes of a stream, or (``size`` None) up to ``limit`` bytes of it."""

    def __init__(self, size: int | None = None, limit: int = 0):
        self.size, self.limit = size, limit
        self.data, self.over = b"", False

    def add(self, chunk: bytes) -> None:
        if self.size is not None:
            self.data = (self.data + chunk)[-self.size:]
        elif len(self.data) + len(chunk) > self.limit:
            self.over = True
        else:
            self.data += chunk


def start_runner(args, become: Callable[[], None], log_write: int, nb_write: int) -> int:
    """Fork the runner: its output into ``log_write``, the notebook pipe as ``NOTEBOOK_FD``, no other
    file of ours open (not the results folder), in the private folder, limited; then ``become()``
    (exec the runner's command, or run it in this fork for a warm run). Returns its pid."""
    pid = os.fork()
    if pid:
        return pid
    status = 1
    try:
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        os.dup2(log_write, 1)
        os.dup2(log_write, 2)
        os.dup2(nb_write, NOTEBOOK_FD)
        os.closerange(NOTEBOOK_FD + 1, os.sysconf("SC_OPEN_MAX"))
        os.chdir(args.private)
        limit(args)
        become()
        status = 0
    except BaseException:
        traceback.print_exc()
    finally:
        exit_flushed(status)


def exit_flushed(status: int) -> NoReturn:
    """End a forked child at once (no ``atexit``, no parent's cleanup run twice), its output flushed first."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(status)

def run(args, become: Callable[[], None]) -> tuple[int | None, bool, bytes, bytes | None, dict[str, float]]:
    """Run the runner (``start_runner``) for at most ``args.seconds``: its exit status, whether it
    timed out, the tail of its output, the notebook it wrote (None if too big), and when it started
    and ended (wall clock). Every other process of the sandbox is dead when it returns."""
    log_read, log_write = os.pipe()
    nb_read, nb_write = os.pipe()
    times = {"runner_started": time.time()}
    pid = start_runner(args, become, log_write, nb_write)
    os.close(log_write)
    os.close(nb_write)
    tails = {log_read: Tail(size=LOG_TAIL_BYTES), nb_read: Tail(limit=args.copy_bytes)}
    open_fds = set(tails)
    # Readable once the runner has ended: its end is seen at once, not at the next half-second
    # (the kernel, its orphan, keeps the log pipe open until it is killed).
    ended = os.pidfd_open(pid)
    returncode, timed_out = None, False
    deadline = time.monotonic() + args.seconds
    while returncode is None:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            returncode = os.waitstatus_to_exitcode(status)
            break
        left = deadline - time.monotonic()
        if left <= 0:
            timed_out = True
            break
        for fd in select.select([*open_fds, ended], [], [], left)[0]:
            if fd == ended:
                continue
            chunk = os.read(fd, 1024**2)
            tails[fd].add(chunk)
            if not chunk:  # every writer of this pipe has gone
                open_fds.discard(fd)
    times["runner_ended"] = time.time()
    try:
        os.kill(-1, signal.SIGKILL)  # every process of the sandbox but this one
    except ProcessLookupError:
        pass  # there were none left
    reap_until = time.monotonic() + REAP_SECONDS
    while time.monotonic() < reap_until:
        try:
            if os.waitpid(-1, os.WNOHANG) == (0, 0):
                time.sleep(0.02)
        except ChildProcessError:
            break
    for fd in open_fds:  # what the pipes still hold: their writers are dead
        os.set_blocking(fd, False)
        try:
            while chunk := os.read(fd, 1024**2):
                tails[fd].add(chunk)
        except BlockingIOError:
            pass
    for fd in [*tails, ended]:
        os.close(fd)
    log, notebook = tails[log_read], tails[nb_read]
    return returncode, timed_out, log.data, None if notebook.over else notebook.data, times


def supervise(args, become: Callable[[], None]) -> None:
    """Steps 1 to 4 above, as the sandbox's process 1; ``become`` runs in the limited runner."""
    started = time.time()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE 0: not traceable, its /proc/1/fd unreadable
    os.chmod(args.private, 0o700)
    if args.uid is not None:
        os.chown(args.private, args.uid, args.uid)
    copy_in(args.results_fd, args.private, args.uid)
    returncode, timed_out, tail, notebook, times = run(args, become)
    if notebook:
        fd = os.open(NOTEBOOK, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=args.results_fd)
        with os.fdopen(fd, "wb") as f:
            f.write(notebook)
    CopyOut(args.results_fd, args.copy_bytes).results(args.private)
    report = {"returncode": returncode, "timed_out": timed_out, "log": tail.decode(errors="replace"),
              "notebook_too_big": notebook is None,
              "private_full": free_bytes(args.private) < FULL_BELOW, "tmp_full": free_bytes("/tmp") < FULL_BELOW,
              "times": {"supervisor_started": started, **times}}
    fd = os.open(REPORT, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=args.results_fd)
    with os.fdopen(fd, "w") as f:
        json.dump(report, f)


def parser() -> argparse.ArgumentParser:
    """The options above; a warm run's supervisor (``interplab.grading.warm``) reads them too."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--memory", type=int, required=True, help="address space per process, bytes")
    parser.add_argument("--processes", type=int, required=True, help="processes of this user")
    parser.add_argument("--file-size", type=int, required=True, help="largest file it may write, bytes")
    parser.add_argument("--uid", type=int, help="unprivileged user (and group) to become")
    parser.add_argument("--private", help="the private tmpfs (supervise as the sandbox's process 1)")
    parser.add_argument("--results-fd", type=int, help="the host's private folder, open")
    parser.add_argument("--seconds", type=float, default=900, help="how long the command may run")
    parser.add_argument("--copy-bytes", type=int, default=64 * 1024**2, help="largest result file copied back")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    return parser


def main() -> None:
    args = parser().parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if args.private:
        supervise(args, lambda: os.execvp(command[0], command))
        return
    limit(args)
    os.execvp(command[0], command)


if __name__ == "__main__":
    main()
