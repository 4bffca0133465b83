"""Peak memory of every lab's solution notebook, and of grading it: what the grader's memory cap is set from.

    python benchmarks/memory.py                   # every lab's solution notebook, one at a time
    python benchmarks/memory.py --graded          # and then one graded submission of each lab, sandboxed
    python benchmarks/memory.py --match 07        # only the labs whose name contains "07"

**Solution notebooks.** Each ``solutions/<lab>/<notebook>.ipynb`` runs top to bottom on the CPU tier with
``interplab.grading.execute.run_notebook``, as the tests and ``benchmarks/notebooks.py`` run it: a runner
process (nbclient) and the kernel it starts, one torch thread.

**Graded** (``--graded``): the completed lab (the solution's answers in the released lab) is graded with
``interplab.grading.grade.grade`` against the default hidden references, in the sandbox a student's
submission meets, so the hidden cells run too. Only the sandboxed run is measured (bubblewrap, the
runner, the kernel and whatever they start), not the grader around it: that run is what
``Limits.memory_total_bytes`` caps.

While a run lasts, a sampler reads ``/proc`` ten times a second for the run's process tree and records:

- **tree PSS**: the sum of its processes' proportional set sizes (shared pages divided among the
  processes that share them), plus, for a sandboxed run, what its tmpfs folders (``/tmp`` and the private
  folder) hold. This is what the grader's watchdog sums (``interplab.grading.budget``) and about what a
  memory cgroup charges (which also counts page cache);
- **tree RSS**: the sum of resident sets, shared pages counted once per process (an upper bound);
- **process HWM**: the largest ``VmHWM`` of any one process, the kernel's exact peak resident set;
- **process VmPeak**: the largest peak address space of any one process, what ``Limits.memory_bytes``
  (``RLIMIT_AS``) bounds; torch reserves far more address space than it touches.

The tree figures are sampled, so a spike shorter than 0.1 s can be missed; the per-process ones are
exact. **peak** is the larger of tree PSS and process HWM. Run it on a quiet machine, one notebook at a
time (the script never runs two at once).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

MiB = 1024**2
#: Seconds between two samples of the run's processes.
INTERVAL = 0.1


def _processes() -> dict[int, tuple[int, bytes]]:
    """pid -> (parent pid, command line) of every process on the host."""
    found = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                stat = f.read()
            with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                cmdline = f.read()
        except OSError:
            continue
        found[int(entry.name)] = (int(stat[stat.rindex(b")") + 2:].split()[1]), cmdline)
    return found


def _status(pid: int) -> dict[str, int]:
    """A process's VmRSS, VmHWM and VmPeak (bytes) from /proc/<pid>/status, and its Pss from smaps_rollup."""
    found = {}
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                key = line.split(b":", 1)[0].decode()
                if key in ("VmRSS", "VmHWM", "VmPeak"):
                    found[key] = int(line.split()[1]) * 1024
        with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
            for line in f:
                if line.startswith(b"Pss:"):
                    found["Pss"] = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError):
        pass
    return found


def _is_run(cmdline: bytes) -> bool:
    """The top of a measured run: the notebook runner, or the bubblewrap that wraps it."""
    args = cmdline.split(b"\0")
    return b"interplab.grading.execute" in args or os.path.basename(args[0]).startswith(b"bwrap")


def _private_folders(cmdline: bytes) -> list[str]:
    """The tmpfs folders of a sandboxed run, named on its supervisor's command line."""
    args = [a.decode(errors="replace") for a in cmdline.split(b"\0")]
    # the supervisor itself (python -m interplab.grading.confine ... --private DIR), not a command that starts it
    supervisor = args[1:3] == ["-m", "interplab.grading.confine"]
    return ["/tmp", args[args.index("--private") + 1]] if supervisor and "--private" in args else []


@dataclass
class Peaks:
    tree_pss: int = 0
    tree_rss: int = 0
    process_hwm: int = 0
    process_vmpeak: int = 0
    tmpfs: int = 0
    samples: int = 0
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def peak(self) -> int:
        return max(self.tree_pss, self.process_hwm)

    def sample(self) -> None:
        table = _processes()
        children: dict[int, list[int]] = {}
        for pid, (ppid, _) in table.items():
            children.setdefault(ppid, []).append(pid)
        mine, todo = [], [os.getpid()]
        while todo:  # every process below this one
            pid = todo.pop()
            mine.append(pid)
            todo += children.get(pid, [])
        runs = {pid for pid in mine if _is_run(table.get(pid, (0, b""))[1])}
        tops = [pid for pid in runs if table[pid][0] not in runs]
        tree, todo = [], list(tops)
        while todo:
            pid = todo.pop()
            tree.append(pid)
            todo += children.get(pid, [])
        if not tree:
            return
        pss = rss = files = 0
        for pid in tree:
            status = _status(pid)
            pss += status.get("Pss", status.get("VmRSS", 0))
            rss += status.get("VmRSS", 0)
            self.process_hwm = max(self.process_hwm, status.get("VmHWM", 0))
            self.process_vmpeak = max(self.process_vmpeak, status.get("VmPeak", 0))
            for folder in _private_folders(table[pid][1]):  # seen through the supervisor's own root
                try:
                    fs = os.statvfs(f"/proc/{pid}/root{folder}")
                    files += (fs.f_blocks - fs.f_bfree) * fs.f_frsize
                except OSError:
                    pass
        self.tree_pss = max(self.tree_pss, pss + files)
        self.tree_rss = max(self.tree_rss, rss + files)
        self.tmpfs = max(self.tmpfs, files)
        self.samples += 1

    def __enter__(self) -> Peaks:
        def loop():
            while not self._stop.wait(INTERVAL):
                self.sample()

        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def measure_solution(lab: str, notebook: str) -> tuple[Peaks, float, str | None]:
    from interplab.grading.execute import run_notebook

    path = ROOT / "solutions" / lab / f"{notebook}.ipynb"
    with tempfile.TemporaryDirectory() as tmp, Peaks() as peaks:
        start = time.perf_counter()
        run = run_notebook(path, Path(tmp) / "out.ipynb", cwd=path.parent, env={"INTERPLAB_TIER": "cpu"})
        seconds = time.perf_counter() - start
    problem = run.problem
    if problem is None and run.notebook is not None:
        from course import errors

        problem = "; ".join(errors(run.notebook)) or None
    return peaks, seconds, problem


def measure_graded(lab: str) -> tuple[Peaks, float, str | None]:
    import nbformat
    from course import completed_lab

    from interplab.grading.grade import grade

    with tempfile.TemporaryDirectory() as tmp:
        subs = Path(tmp) / "subs"
        subs.mkdir()
        nbformat.write(completed_lab(lab=lab), str(subs / "student.ipynb"))
        with Peaks() as peaks:
            start = time.perf_counter()
            rows = grade(ROOT, lab, subs, Path(tmp) / "grades.csv", work=Path(tmp) / "work", feedback=False)
            seconds = time.perf_counter() - start
    row, full = rows[0], _points(lab)
    return peaks, seconds, f"{row.status}, {row.total():g} of {full:g} points"


def _points(lab: str) -> float:
    """The lab's full marks: the points of its graded cells."""
    from course import read, solution_of

    return sum(c.metadata["nbgrader"].get("points", 0) for c in read(solution_of(lab)).cells
               if c.metadata.get("nbgrader", {}).get("grade"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--graded", action="store_true", help="also grade one completed submission of each lab")
    parser.add_argument("--match", default="", help="only the labs whose name contains this")
    args = parser.parse_args()
    os.environ.update({"OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"})

    from interplab.grading.sandbox import Limits
    from interplab.syllabus import graded_labs

    labs = [m for m in graded_labs() if args.match in m.lab]
    runs = [("solution", m) for m in labs] + ([("graded", m) for m in labs] if args.graded else [])
    print(f"{'lab':<18} {'run':<9} {'wall s':>7} {'peak MiB':>9} {'tree PSS':>9} {'tree RSS':>9} "
          f"{'proc HWM':>9} {'VmPeak':>8} {'tmpfs':>6}  status", flush=True)
    largest: dict[str, tuple[int, str]] = {}
    for kind, m in runs:
        peaks, seconds, problem = measure_solution(m.lab, m.notebook) if kind == "solution" else measure_graded(m.lab)
        print(f"{m.lab:<18} {kind:<9} {seconds:>7.1f} {peaks.peak / MiB:>9.0f} {peaks.tree_pss / MiB:>9.0f} "
              f"{peaks.tree_rss / MiB:>9.0f} {peaks.process_hwm / MiB:>9.0f} {peaks.process_vmpeak / MiB:>8.0f} "
              f"{peaks.tmpfs / MiB:>6.0f}  {problem or 'ok'}", flush=True)
        for key, value in (("peak", peaks.peak), ("VmPeak", peaks.process_vmpeak)):
            if value > largest.get(key, (0, ""))[0]:
                largest[key] = (value, f"{m.lab} ({kind})")
    if "peak" in largest:
        (peak, where), (vm, vm_where) = largest["peak"], largest["VmPeak"]
        limits = Limits()
        print(f"\nlargest peak: {peak / MiB:.0f} MiB, {where}; the default cap (Limits.memory_total_bytes) is "
              f"{limits.memory_total_bytes / MiB:.0f} MiB, {limits.memory_total_bytes / peak:.1f}x that")
        print(f"largest address space of one process: {vm / MiB:.0f} MiB, {vm_where}; Limits.memory_bytes is "
              f"{limits.memory_bytes / MiB:.0f} MiB, {limits.memory_bytes / vm:.1f}x that")


if __name__ == "__main__":
    main()
