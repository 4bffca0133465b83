"""Warm runs: each submission's kernel forked from a process that has imported torch and the course.

A cold graded run starts bubblewrap, a Python for its supervisor, one for the runner (nbclient) and
one for the kernel, and the notebook then imports torch, TransformerLens and the course: about 9 s
of a lab 02 submission's 11 s, the same for every student. Here each grading process keeps one
**zygote** instead: a Python inside a long-lived bubblewrap sandbox (``Sandbox.zygote_command``: the
same read-only view of the system, no network) that imports all of that once and never runs a
submission's code. For each run it forks, and the fork isolates itself exactly as bubblewrap and
``confine`` isolate a cold run, before anything of the submission runs:

1. **the run's first process**, root, joins the run's cgroup (``Budget``: through files the grader
   opened, so that nothing of the run escapes its memory budget), then takes new mount, process,
   IPC, network, UTS and cgroup namespaces and forks
2. **the supervisor**, process 1 of the new process tree, which mounts a fresh ``/tmp``, a fresh
   private folder (both bounded tmpfs, as bubblewrap makes them) and a ``/proc`` of its own, brings
   up its own loopback, and supervises the run as in a cold one (``confine.supervise``): it copies
   the inputs in and forks
3. **the runner**, unprivileged and limited (``confine.limit``), which runs nbclient in that fork
   (``execute.execute``) with a kernel manager that forks
4. **the kernel**: ipykernel's app, started in that fork on the connection file the manager wrote.
   A notebook's ``import torch`` finds torch loaded.

Nothing of one run reaches the next. Every fork starts from the zygote's memory as it was after its
imports, copy-on-write (a submission that changes a module, ``torch.allclose`` say, changes its own
copy); what it may write is mounted fresh; its processes have their own namespaces and all die with
the run (the supervisor kills them, the grader kills the cgroup). The zygote reads no request itself
(its fork does, and the buffer is wiped), and its environment is the allow-list a run gets: it holds
nothing secret, and nothing of a previous run.

Where a warm kernel differs from a fresh one: the pages it shares with the zygote are charged to
the grader's cgroup, not the run's (the run's budget counts what it allocates or changes); modules
were imported under the zygote's environment (``QUIET_ENV``, the same for every run), so
matplotlib's configuration folder is under ``/tmp`` rather than the private folder; Python's string
hash seed is the zygote's (numpy's global generator is reseeded in each kernel, as a fresh one
would be).

Warm runs need what makes them as safe as cold ones: a grader running as root (which gives every
worker its own user), bubblewrap, a memory cgroup, and a private folder under ``/tmp`` (where the
fresh tmpfs goes). Elsewhere, or where the zygote cannot start, runs are cold (``why_cold``).
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import ctypes
import fcntl
import gc
import importlib
import importlib.util
import json
import os
import pkgutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import traceback
import uuid
from pathlib import Path
from typing import BinaryIO, NoReturn

from jupyter_client import AsyncKernelManager
from jupyter_client.provisioning import LocalProvisioner

from interplab.grading import confine, execute
from interplab.grading.budget import Budget
from interplab.grading.sandbox import Sandbox, private_env, readable_roots

#: What the zygote imports: the kernel's machinery and what the course's notebooks import, then
#: every module of the course but the grader's own (``_import_course``).
IMPORTS = ("torch", "transformer_lens", "einops", "jaxtyping", "matplotlib.pyplot", "nbformat", "nbclient",
           "jupyter_client", "ipykernel.kernelapp")
#: The zygote's home and caches: under ``/tmp``, which every run gets fresh.
ZYGOTE_HOME = Path("/tmp/interplab-zygote")
#: pyarrow (which TransformerLens imports, through datasets) starts a jemalloc thread; a fork takes
#: only the thread that forks, so the zygote must have no other.
ZYGOTE_ENV = {"JE_ARROW_MALLOC_CONF": "background_thread:false"}
#: Seconds the zygote may take to import everything (over a minute on a loaded machine).
START_SECONDS = 300
READY = b"ready"
#: The largest request (a run's options and environment) and how many files come with it.
MAX_REQUEST_BYTES = 1024**2
MAX_FDS = 8
TMP = Path("/tmp")

CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS = 0x00020000, 0x02000000, 0x04000000
CLONE_NEWIPC, CLONE_NEWPID, CLONE_NEWNET = 0x08000000, 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_NAME = 1, 4, 15
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP, IFREQ_BYTES = 0x8913, 0x8914, 0x1, 40
#: What bubblewrap covers read-only in a sandbox's /proc, and so does a warm run's supervisor.
PROC_COVERED = ("sys", "sysrq-trigger", "irq", "bus")

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.unshare.argtypes = [ctypes.c_int]


# -- the grader's side ------------------------------------------------------------------------

class Zygote:
    """The grader's handle on its zygote: a sandboxed Python, imports done, that forks runs."""

    def __init__(self, sandbox: Sandbox):
        self.owner = os.getpid()  # a forked grader starts its own: a socket is no channel for two
        #: Why it could not start (None once it has).
        self.problem: str | None = None
        self._lock = threading.Lock()
        self._control, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        env = {k: v for k, v in os.environ.items() if k in execute.PASSED_ENV}
        env |= execute.QUIET_ENV | private_env(ZYGOTE_HOME) | ZYGOTE_ENV
        with tempfile.TemporaryFile() as errors:
            self._process = subprocess.Popen(
                sandbox.zygote_command([sys.executable, "-m", "interplab.grading.warm", str(theirs.fileno())]),
                env=env, stdin=subprocess.DEVNULL, stdout=errors, stderr=subprocess.STDOUT,
                pass_fds=(theirs.fileno(),), start_new_session=True)
            theirs.close()
            self._control.settimeout(START_SECONDS)
            try:
                ready = self._control.recv(len(READY))
            except TimeoutError:
                ready = b""
            self._control.settimeout(None)
            if ready != READY:
                errors.seek(0)
                self.problem = f"the warm zygote did not start: {execute.plain(errors.read().decode(errors='replace'))}"
                self.close()

    def alive(self) -> bool:
        return self.problem is None and self._process.poll() is None and self.owner == os.getpid()

    def fork(self, request: dict, fds: list[int]) -> socket.socket:
        """Have the zygote fork a run; its first process reports on the socket returned."""
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            with self._lock:
                socket.send_fds(self._control, [json.dumps(request).encode()], [theirs.fileno(), *fds])
        except OSError:
            mine.close()
            raise
        finally:
            theirs.close()
        return mine

    def close(self) -> None:
        self._control.close()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._process.pid, signal.SIGKILL)
        self._process.wait()


_ZYGOTE: Zygote | None = None
_ZYGOTE_LOCK = threading.Lock()


def zygote(sandbox: Sandbox) -> Zygote:
    """This process's zygote, started the first time and again whenever it has died. One that could
    not start is kept (with its ``problem``): its runs are cold, rather than each waiting for
    another try."""
    global _ZYGOTE
    with _ZYGOTE_LOCK:
        if _ZYGOTE is None or (_ZYGOTE.problem is None and not _ZYGOTE.alive()):
            _ZYGOTE = Zygote(sandbox)
        return _ZYGOTE


def why_cold(sandbox: Sandbox, budget: Budget, private: Path) -> str | None:
    """Why a sandboxed run in ``private`` must be cold, or None if it can be warm (the zygote aside)."""
    if sandbox.problem:
        return sandbox.problem
    if sandbox.uid is None:
        return "warm runs need a grader running as root (each worker then has a user of its own)"
    if budget.cgroup is None:
        return f"warm runs need a memory cgroup ({budget.why_not_cgroup})"
    if private != private.resolve() or not private.is_relative_to(TMP) or private == TMP:
        return f"warm runs need their private folder under {TMP} (a resolved path), where each gets a fresh tmpfs"
    return None


class WarmRun:
    """A warm run as ``execute._run`` watches it; every process of it lies in its cgroup."""

    #: No process of the host's tree to sample: the cgroup holds the run, and the budget kills it.
    pid = None

    def __init__(self, reports: socket.socket, budget: Budget):
        self._reports = reports
        self._budget = budget
        self.returncode: int | None = None

    def wait(self, timeout: float | None) -> bool:
        """Whether the run has ended, waiting at most ``timeout`` seconds (None: until it has)."""
        if self.returncode is None:
            self._reports.settimeout(timeout)
            try:
                report = self._reports.recv(4096)
            except TimeoutError:
                return False
            # its first process reports whatever happens, unless it was killed (by the budget, say)
            self.returncode = json.loads(report)["returncode"] if report else -signal.SIGKILL
            self._reports.close()
        return True

    def kill(self) -> None:
        self._budget.kill()


def start(sandbox: Sandbox, budget: Budget, private: Path, runner: list[str], env: dict[str, str],
          results: int, log: BinaryIO, seconds: float) -> WarmRun | None:
    """Start a warm run of ``execute`` (with the options ``runner``) in ``private``, stopped by its
    supervisor after ``seconds``; None if this run must be cold (``why_cold``) or the zygote cannot start."""
    if why_cold(sandbox, budget, private) is not None:
        return None
    request = {"confine": sandbox.confine_args(private, results, seconds), "runner": runner,
               "env": env, "private": str(private), "tmp_bytes": sandbox.limits.tmp_bytes,
               "disk_bytes": sandbox.limits.disk_bytes}
    cgroups = budget.cgroup.open_procs()
    try:
        for _ in range(2):  # a zygote that died since it was last used is started again, once
            found = zygote(sandbox)
            if found.problem:
                return None
            try:
                return WarmRun(found.fork(request, [results, log.fileno(), *cgroups]), budget)
            except OSError:
                found.close()
        return None
    finally:
        for fd in cgroups:
            os.close(fd)


# -- the zygote -------------------------------------------------------------------------------

def main() -> None:
    """The zygote: import everything, say so, then fork a run for each request until the grader goes."""
    control = socket.socket(fileno=int(sys.argv[1]))
    _name("ilab-zygote")
    del sys.path[0]  # the folder it started in: nothing is imported from where a submission writes
    sys.modules.setdefault("rfc3987_syntax", None)  # as in a cold runner (execute.py says why)
    for name in IMPORTS:
        importlib.import_module(name)
    _import_course()
    threads = [Path(f"/proc/self/task/{t}/comm").read_text().strip() for t in os.listdir("/proc/self/task")]
    if len(threads) > 1:
        sys.exit(f"the zygote runs {len(threads)} threads ({', '.join(threads)}), and a fork would keep only one")
    gc.freeze()  # a collection in a fork would otherwise write to (and so copy) every page of objects
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps the runs: no zombie waits for us
    control.send(READY)
    buffer = bytearray(MAX_REQUEST_BYTES)
    while True:
        size, ancillary, _, _ = control.recvmsg_into([buffer], socket.CMSG_SPACE(MAX_FDS * 4))
        if not size:
            return  # the grader has gone
        fds = array.array("i")
        for level, kind, data in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
        if os.fork() == 0:
            control.close()
            _first(bytes(buffer[:size]), list(fds))
        buffer[:size] = bytes(size)  # the next run's fork must not find this one's request
        for fd in fds:
            os.close(fd)


def _import_course() -> None:
    """Every module of the course that a notebook may import (not the grader's, its command line or
    its site builder). One that fails to import is left for the kernel to import, as a cold one does."""
    import interplab

    for module in pkgutil.walk_packages(interplab.__path__, "interplab."):
        if not module.name.startswith(("interplab.grading", "interplab.cli", "interplab.site")):
            with contextlib.suppress(Exception):
                importlib.import_module(module.name)


def _first(request: bytes, fds: list[int]) -> NoReturn:
    """The run's first process: join the run's cgroup, take new namespaces, fork the supervisor,
    report how it ended."""
    status = 1
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        _name("ilab-warm-run")
        reports, results, log, *cgroups = fds
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        _libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)  # gone with the zygote, as the run's tree is
        for fd in cgroups:  # before anything else: all the run does from here on counts against its budget
            os.write(fd, b"0")  # "0" is the writer itself
            os.close(fd)
        _check(_libc.unshare(CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWNET | CLONE_NEWUTS | CLONE_NEWCGROUP),
               "unshare")
        supervisor = os.fork()
        if supervisor == 0:
            os.close(reports)
            _supervisor(json.loads(request), results)
        os.close(results)
        _, ended = os.waitpid(supervisor, 0)
        os.write(reports, json.dumps({"returncode": os.waitstatus_to_exitcode(ended)}).encode())
        status = 0
    except BaseException:
        traceback.print_exc()
    finally:
        os._exit(status)


def _supervisor(request: dict, results: int) -> NoReturn:
    """Process 1 of the run's process tree: the mounts a cold run's bubblewrap makes, then
    ``confine.supervise`` with the runner run in its fork."""
    status = 1
    try:
        os.setsid()
        _name("ilab-supervisor")
        private = Path(request["private"])
        _mount_fresh(private, request["tmp_bytes"], request["disk_bytes"])
        _loopback_up()
        os.chdir(private)
        os.environ.clear()
        os.environ.update(request["env"])
        args = confine.parser().parse_args(request["confine"])
        args.results_fd = results  # the grader's number for it means nothing in this process
        options = execute.parser().parse_args(request["runner"])

        def runner() -> None:  # in confine's fork, unprivileged and limited
            _name("ilab-runner")
            execute.execute(options, ForkingKernelManager)

        confine.supervise(args, runner)
        status = 0
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stderr.flush()
        os._exit(status)


def _name(comm: str) -> None:
    """Name this process (``ps``, ``/proc/PID/comm``): every fork of the zygote has its command line."""
    _libc.prctl(PR_SET_NAME, ctypes.c_char_p(comm.encode()), 0, 0, 0)


def _check(result: int, what: str) -> None:
    if result != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"{what}: {os.strerror(error)}")


def _mount(source: str | None, target: str, kind: str | None, flags: int, options: str | None = None) -> None:
    encode = lambda text: text.encode() if text is not None else None  # noqa: E731
    _check(_libc.mount(encode(source), target.encode(), encode(kind), flags, encode(options)), f"mount {target}")


def _make_dirs(path: Path) -> None:
    """The folders above ``path`` inside the fresh ``/tmp``, passable by anyone (bubblewrap's ``--perms 0755 --dir``)."""
    for folder in reversed(path.parents):
        if folder.is_relative_to(TMP) and folder != TMP:
            folder.mkdir(exist_ok=True)
            folder.chmod(0o755)


def _mount_fresh(private: Path, tmp_bytes: int, disk_bytes: int) -> None:
    """Mount over the zygote's what a cold run's bubblewrap makes fresh: ``/tmp`` and the private
    folder in it (tmpfs, bounded) and a ``/proc`` of this process tree, parts of it read-only."""
    _mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing mounted here shows in the zygote
    # A course installed under /tmp (a fresh clone there, say) is bound read-only into the zygote's /tmp:
    # held open here, it is bound again into the fresh one, as bubblewrap binds it after its own tmpfs.
    under_tmp = {root: os.open(root, os.O_PATH | os.O_DIRECTORY) for root in readable_roots()
                 if root.is_relative_to(TMP) and not root.is_symlink()}
    _mount("tmpfs", str(TMP), "tmpfs", MS_NOSUID | MS_NODEV, f"mode=1777,size={tmp_bytes}")
    for root, fd in under_tmp.items():
        _make_dirs(root)
        root.mkdir(exist_ok=True)
        _mount(f"/proc/self/fd/{fd}", str(root), None, MS_BIND | MS_REC)  # a bind keeps the source's read-only flag
        os.close(fd)
        if not os.statvfs(root).f_flag & os.ST_RDONLY:
            raise RuntimeError(f"{root} would be writable in the run")
    _make_dirs(private)
    private.mkdir()
    _mount("tmpfs", str(private), "tmpfs", MS_NOSUID | MS_NODEV, f"mode=0700,size={disk_bytes}")
    _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    for name in PROC_COVERED:
        path = f"/proc/{name}"
        if os.path.exists(path):
            _mount(path, path, None, MS_BIND | MS_REC)
            _mount(None, path, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)


def _loopback_up() -> None:
    """A new network namespace has only a loopback, and down: the runner talks to its kernel over it."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH", b"lo", 0).ljust(IFREQ_BYTES, b"\0")
        flags = struct.unpack_from("16sH", fcntl.ioctl(sock, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sH", b"lo", flags | IFF_UP).ljust(IFREQ_BYTES, b"\0"))


# -- the kernel -------------------------------------------------------------------------------

class ForkingKernelManager(AsyncKernelManager):
    """nbclient's kernel manager, but the kernel is a fork of this runner, not a new Python."""

    async def _async_pre_start_kernel(self, **kw):
        self.kernel_id = self.kernel_id or kw.pop("kernel_id", str(uuid.uuid4()))
        self.provisioner = _ForkProvisioner(kernel_id=self.kernel_id, kernel_spec=self.kernel_spec, parent=self)
        return await super()._async_pre_start_kernel(**kw)


class _ForkProvisioner(LocalProvisioner):
    """jupyter_client's local provisioner (ports, connection file, signals), launching by fork."""

    async def launch_kernel(self, cmd: list[str], **kwargs):
        self.cwd = kwargs.get("cwd") or os.getcwd()
        self.process = _ForkedKernel(self.parent.connection_file, self.cwd, kwargs["env"])
        self.pid = self.pgid = self.process.pid
        return self.connection_info


class _ForkedKernel:
    """What ``LocalProvisioner`` uses of ``subprocess.Popen``, for a kernel forked from this process."""

    stdin = stdout = stderr = None

    def __init__(self, connection_file: str, cwd: str, env: dict[str, str]):
        self.returncode: int | None = None
        self.pid = os.fork()
        if self.pid == 0:
            _kernel(connection_file, cwd, env)

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self) -> int:
        if self.returncode is None:
            self.returncode = os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)


def _kernel(connection_file: str, cwd: str, env: dict[str, str]) -> NoReturn:
    """The kernel's fork: forget the runner (its files, its event loop, its signal handlers), then
    be ipykernel's app as ``python -m ipykernel_launcher -f FILE`` would be."""
    status = 1
    try:
        os.setsid()  # its own process group, which an interrupt signals (as jupyter_client's launcher makes it)
        _name("ilab-kernel")
        os.closerange(3, os.sysconf("SC_OPEN_MAX"))  # not the runner's pipe to the supervisor, nor its sockets
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        asyncio.set_event_loop_policy(None)  # the runner's loop is not this process's
        _libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)  # as an exec'd kernel is: the runner made itself undumpable
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(env)
        if "numpy" in sys.modules:
            sys.modules["numpy"].random.seed()  # a fresh kernel's generator is seeded afresh
        if sys.modules.get("rfc3987_syntax", False) is None:
            del sys.modules["rfc3987_syntax"]  # the runner's shortcut (see execute.py), not the kernel's
        sys.argv = [importlib.util.find_spec("ipykernel_launcher").origin, "-f", connection_file]
        from ipykernel.kernelapp import IPKernelApp

        app = IPKernelApp.instance()
        app.initialize(sys.argv[1:])
        app.start()
        status = 0
    except BaseException:
        traceback.print_exc()
    finally:
        confine.exit_flushed(status)


if __name__ == "__main__":
    main()
