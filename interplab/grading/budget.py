"""How much memory and how many processes one graded run may use *in total*.

Per-process limits (``RLIMIT_AS``) do not bound a run: forked children multiply them, and the
sandbox's ``/tmp`` and private folder are tmpfs mounts whose pages live in RAM outside every
rlimit. A run's total is bounded here, in the first of these ways that the machine allows:

- **a cgroup** (the kernel's own accounting: every process of the run, its tmpfs pages, its
  kernel memory; a hard limit, an OOM kill inside the run and never outside it). As root on
  cgroup v1 (``/sys/fs/cgroup/memory``) the run's cgroup is made inside the grader's own; on
  cgroup v2 beside the grader's own, where its parent delegates ``memory`` and is writable (root,
  or a user who starts the grader in a delegated scope: ``systemd-run --user --scope -p
  Delegate=yes interplab grade ...``).
- **a watchdog** otherwise (an ordinary user's login shell on most servers): the grader sums
  the proportional set size (PSS, shared pages divided among their sharers) of the run's
  processes twice a second and stops the run when it passes the limit. It is a sampler, so
  a fast allocation can overshoot for a moment; the tmpfs mounts are bounded by their own sizes.

``Budget.kind`` says which one holds, and ``interplab grade`` prints it when it is the watchdog.
"""

from __future__ import annotations

import errno
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
#: How often the watchdog samples a run, seconds.
SAMPLE_SECONDS = 0.5


def _own_cgroups() -> dict[str, str]:
    """The grader's cgroup per hierarchy: {"memory": "/a/b", "pids": "/", "": "/x"} ("" is v2)."""
    found = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for controller in controllers.split(",") if controllers else [""]:
            found[controller] = path
    return found


def _writable_dir(path: Path) -> bool:
    return path.is_dir() and os.access(path, os.W_OK | os.X_OK)


@dataclass
class Cgroup:
    """One run's cgroup: a folder per hierarchy (v1: memory and perhaps pids; v2: one)."""

    folders: list[Path]
    v2: bool

    @classmethod
    def find_parents(cls) -> tuple[list[Path], bool] | str:
        """Where run cgroups can be made, and whether that is v2; or why none can be."""
        try:
            own = _own_cgroups()
        except OSError as exc:
            return f"cannot read /proc/self/cgroup ({exc.strerror})"
        if "memory" in own:  # cgroup v1 (or hybrid with the memory controller on v1)
            memory = CGROUP_ROOT / "memory" / own["memory"].lstrip("/")
            if not _writable_dir(memory):
                return f"the memory cgroup {memory} is not writable (grade as root, or give the grader a delegated cgroup)"
            parents = [memory]
            pids = CGROUP_ROOT / "pids" / own.get("pids", "/").lstrip("/")
            if "pids" in own and _writable_dir(pids):
                parents.append(pids)
            return parents, False
        if "" in own and (CGROUP_ROOT / "cgroup.controllers").is_file():
            parent = (CGROUP_ROOT / own[""].lstrip("/")).parent
            try:
                enabled = (parent / "cgroup.subtree_control").read_text().split()
            except OSError:
                enabled = []
            if "memory" not in enabled or not _writable_dir(parent):
                return (f"cgroup v2: {parent} does not delegate the memory controller to the grader "
                        "(grade as root, or in a delegated scope: systemd-run --user --scope -p Delegate=yes ...)")
            return [parent], True
        return "no memory cgroup controller is mounted"

    @classmethod
    def make(cls, memory_bytes: int, processes: int) -> Cgroup | str:
        """A fresh cgroup with the limits set, or why none could be made."""
        found = cls.find_parents()
        if isinstance(found, str):
            return found
        parents, v2 = found
        name = f"interplab-run-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        group = cls([p / name for p in parents], v2)
        try:
            for folder in group.folders:
                folder.mkdir()
            if v2:
                group._write("memory.max", memory_bytes)
                group._write("memory.swap.max", 0, optional=True)
                group._write("pids.max", processes, optional=True)
            else:
                group._write("memory.limit_in_bytes", memory_bytes)
                group._write("memory.memsw.limit_in_bytes", memory_bytes, optional=True)  # no swap either
                group._write("pids.max", processes, optional=True)
        except OSError as exc:
            group.remove()
            return f"cannot set up a cgroup ({exc.strerror}: {exc.filename})"
        return group

    def _write(self, name: str, value: int, optional: bool = False) -> None:
        for folder in self.folders:
            if (folder / name).exists():
                (folder / name).write_text(str(value))
                return
        if not optional:
            raise OSError(errno.ENOENT, "missing", name)

    def _read(self, name: str) -> str | None:
        for folder in self.folders:
            try:
                return (folder / name).read_text()
            except OSError:
                continue
        return None

    def join_command(self, cmd: list[str]) -> list[str]:
        """``cmd`` started inside this cgroup: the shell joins it, then becomes ``cmd``, so that
        nothing of the run (bubblewrap forks at once) ever starts outside it."""
        joins = " && ".join(f'echo $$ > "${i + 1}"' for i in range(len(self.folders)))
        script = f'{joins} && shift {len(self.folders)} && exec "$@"'
        return ["/bin/sh", "-c", script, "interplab-join", *(str(f / "cgroup.procs") for f in self.folders), *cmd]

    def open_procs(self) -> list[int]:
        """Each hierarchy's ``cgroup.procs``, open for writing: whoever writes "0" into each joins
        this cgroup. A warm run's first process gets them (``interplab.grading.warm``): it cannot
        reach ``/sys/fs/cgroup``, and the kernel checks a move against the rights and the cgroup
        namespace of whoever opened the file, the grader."""
        return [os.open(folder / "cgroup.procs", os.O_WRONLY | os.O_CLOEXEC) for folder in self.folders]

    def oom_kills(self) -> int:
        """How many processes of the run the kernel killed for going over the memory limit."""
        text = self._read("memory.events" if self.v2 else "memory.oom_control") or ""
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        return 0

    def peak_bytes(self) -> int | None:
        text = self._read("memory.peak" if self.v2 else "memory.max_usage_in_bytes")
        return int(text) if text and text.strip().isdigit() else None

    def kill(self) -> None:
        """SIGKILL every process still in the cgroup."""
        if self.v2 and self._read("cgroup.kill") is not None:
            try:
                self._write("cgroup.kill", 1)
                return
            except OSError:
                pass
        for folder in self.folders:
            try:
                pids = (folder / "cgroup.procs").read_text().split()
            except OSError:
                continue
            for pid in pids:
                try:
                    os.kill(int(pid), 9)
                except OSError:
                    pass

    def remove(self) -> None:
        """Remove the cgroup; its memory is released a moment after its last process exits."""
        for folder in self.folders:
            for _ in range(40):
                try:
                    folder.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.05)


def descendants(root: int) -> list[int]:
    """``root`` and every process below it, from the host's process table."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(b")") + 2:].split()[1])  # comm may hold spaces and parentheses
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += children.get(pid, [])
    return found


def memory_of(pid: int) -> int:
    """Bytes of memory a process holds: its PSS (its share of shared pages), else its RSS."""
    for name, key in (("smaps_rollup", b"Pss:"), ("status", b"VmRSS:")):
        try:
            with open(f"/proc/{pid}/{name}", "rb") as f:
                for line in f:
                    if line.startswith(key):
                        return int(line.split()[1]) * 1024
        except (OSError, ValueError):
            continue
    return 0


@dataclass
class Budget:
    """One run's total memory and processes: enforced by a cgroup, or watched by sampling."""

    memory_bytes: int
    processes: int
    cgroup: Cgroup | None = None
    #: Why no cgroup holds the run (None when one does).
    why_not_cgroup: str | None = None
    peak_sampled: int = 0
    over: bool = False
    _next_sample: float = field(default=0.0, repr=False)

    @classmethod
    def start(cls, memory_bytes: int, processes: int) -> Budget:
        made = Cgroup.make(memory_bytes, processes)
        if isinstance(made, str):
            return cls(memory_bytes, processes, why_not_cgroup=made)
        return cls(memory_bytes, processes, cgroup=made)

    @property
    def kind(self) -> str:
        return "cgroup" if self.cgroup else "watchdog"

    def command(self, cmd: list[str]) -> list[str]:
        return self.cgroup.join_command(cmd) if self.cgroup else cmd

    def watch(self, root: int) -> bool:
        """Sample the run below ``root`` (watchdog only); True once it is over its memory."""
        if self.cgroup is not None or time.monotonic() < self._next_sample:
            return self.over
        self._next_sample = time.monotonic() + SAMPLE_SECONDS
        used = sum(memory_of(pid) for pid in descendants(root))
        self.peak_sampled = max(self.peak_sampled, used)
        self.over = self.over or used > self.memory_bytes
        return self.over

    def kill(self) -> None:
        if self.cgroup is not None:
            self.cgroup.kill()

    def close(self) -> str | None:
        """Release the cgroup; say plainly if the run went over its memory."""
        limit = f"its {self.memory_bytes / 1024**3:g} GB of memory (all its processes and files together)"
        if self.cgroup is None:
            return f"it used more than {limit} and was stopped" if self.over else None
        kills = self.cgroup.oom_kills()
        self.cgroup.kill()
        self.cgroup.remove()
        if not kills:
            return None
        return f"it went over {limit}: {kills} of its processes {'was' if kills == 1 else 'were'} killed"
