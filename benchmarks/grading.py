"""Grading throughput: interplab (sandboxed) with 1 and 2 workers, against stock nbgrader; and where the time goes.

    python benchmarks/grading.py [--students 20] [--breakdown 6]

Makes a class of lab 02 submissions (the solution and every known mistake, in turn), grades it
with ``interplab grade`` using 1 and then 2 workers, and with stock ``nbgrader autograde`` (its
own Execute step, no sandbox) on the same notebooks, and prints submissions per minute and the
ratios, and how many warm zygotes (``interplab.grading.warm``) each interplab run used.

Then it grades the first ``--breakdown`` submissions again, one at a time in this process (what
one grading worker does, feedback included), with timers around each stage, and prints where one
submission's time goes: the mean over all but the first (which also starts the zygote). Inside the
sandbox the stages are read from the supervisor's report (``run.json``) and the cells' own
timestamps (nbclient's). Run it on an otherwise idle machine: the figures are wall-clock.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
LAB = "02_induction"


def make_class(folder: Path, n: int) -> None:
    from course import MUTANTS, completed_lab

    folder.mkdir(parents=True)
    variants = [None, *MUTANTS]
    for i in range(n):
        nbformat.write(completed_lab(variants[i % len(variants)]), str(folder / f"student{i:03d}.ipynb"))


class Zygotes:
    """Counts the warm zygotes below this process while a grading run lasts (sampled twice a second)."""

    def __init__(self):
        self.seen: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        from interplab.grading.budget import descendants

        while not self._stop.wait(0.5):
            for pid in descendants(os.getpid()):
                with contextlib.suppress(OSError):
                    if Path(f"/proc/{pid}/comm").read_text().strip() == "ilab-zygote":
                        self.seen.add(pid)

    def __enter__(self) -> Zygotes:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def time_interplab(submissions: Path, workers: int, tmp: Path) -> tuple[float, int]:
    """Seconds to grade the class, and how many zygotes did it."""
    from interplab.grading.grade import grade

    start = time.perf_counter()
    with Zygotes() as zygotes:
        rows = grade(ROOT, LAB, submissions, tmp / f"grades-{workers}.csv", work=tmp / f"work-{workers}",
                     feedback=False, workers=workers)
    elapsed = time.perf_counter() - start
    assert all(r.status.startswith("graded") for r in rows), [r.status for r in rows]
    return elapsed, len(zygotes.seen)


def time_stock_nbgrader(submissions: Path, tmp: Path) -> float:
    """nbgrader as shipped: a plain course folder, its own Execute preprocessor, one process."""
    course = tmp / "stock"
    (course / "source").mkdir(parents=True)
    shutil.copytree(ROOT / "solutions" / LAB, course / "source" / LAB)
    (course / "nbgrader_config.py").write_text('c = get_config()\nc.CourseDirectory.course_id = "stock"\n')
    for nb in sorted(submissions.glob("*.ipynb")):
        target = course / "submitted" / nb.stem / LAB
        target.mkdir(parents=True)
        shutil.copy(nb, target / "induction_heads.ipynb")
    nbgrader = [sys.executable, "-m", "nbgrader"]
    subprocess.run(nbgrader + ["generate_assignment", LAB, "--force"], cwd=course, check=True, capture_output=True)
    start = time.perf_counter()
    subprocess.run(nbgrader + ["autograde", LAB, "--force"], cwd=course, check=True, capture_output=True)
    return time.perf_counter() - start


# -- where one submission's time goes ------------------------------------------------------------

#: The stages, in the order they happen; indented ones are parts of the one above.
STAGES = {
    "grade": "interplab grade's own steps (read, repair, copy in; read the grades back)",
    "nbgrader": "nbgrader autograde's own steps (gradebook, locked cells, its other preprocessors, save)",
    "trusted": "TrustedExecute around the run (claim a user, folders, hidden cases in, outputs, verdicts written)",
    "judging": "judging the recorded answers against the references",
    "sandbox": "  sandbox start (the zygote's fork: cgroup, namespaces, mounts)",
    "copy_in": "  supervisor copies the inputs in, forks the runner",
    "kernel": "  kernel start (runner, nbclient, the kernel's fork, its handshake)",
    "setup": "  the set-up cell (imports, loading the model)",
    "cells": "  the other cells (the student's code, checks, hidden recordings)",
    "runner_end": "  the runner's end (kernel shut down, notebook handed to the supervisor)",
    "handover": "  hand-over (every process killed, results copied out, read back, cgroup removed)",
    "feedback": "feedback (nbgrader generate_feedback; not in the timings above)",
}


def _stamp(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _run_stages(started: float, ended: float, run, report: dict) -> dict[str, float]:
    """The sandboxed run's stages, from the supervisor's report and the cells' own timestamps."""
    times = report["times"]
    cells = [c for c in run.notebook.cells if c.cell_type == "code" and "iopub.execute_input" in c.metadata.get("execution", {})]
    first = _stamp(cells[0].metadata.execution["iopub.execute_input"])
    last = _stamp(cells[-1].metadata.execution["shell.execute_reply"])
    setup = next(c for c in cells if "from interplab.models import load" in c.source).metadata.execution
    setup_seconds = _stamp(setup["shell.execute_reply"]) - _stamp(setup["iopub.execute_input"])
    return {"sandbox": times["supervisor_started"] - started, "copy_in": times["runner_started"] - times["supervisor_started"],
            "kernel": first - times["runner_started"], "setup": setup_seconds, "cells": last - first - setup_seconds,
            "runner_end": times["runner_ended"] - last, "handover": ended - times["runner_ended"]}


@contextlib.contextmanager
def _timed(owner, name: str, record: Callable[[float, float, tuple, object], None]) -> Iterator[None]:
    """``owner.name`` wrapped so that ``record(start, end, args, result)`` sees each call."""
    original = getattr(owner, name)

    @functools.wraps(original)
    def wrapper(*args, **kwargs):
        start = time.time()
        result = original(*args, **kwargs)
        record(start, time.time(), args, result)
        return result

    setattr(owner, name, wrapper)
    try:
        yield
    finally:
        setattr(owner, name, original)


def breakdown(submissions: list[Path], tmp: Path) -> tuple[list[dict[str, float]], str]:
    """Each submission's seconds per stage (``STAGES``), graded in this process as one worker
    grades it; and whether its runs were warm."""
    from nbgrader.apps import NbGraderAPI

    import interplab.grading.grade as grading
    import interplab.grading.trusted as trusted
    from interplab.grading import warm
    from interplab.grading.confine import REPORT

    settings = grading.Settings(ROOT, LAB, tmp / "work-breakdown", feedback=True)
    with __import__("warnings").catch_warnings():
        grading._quiet()
        settings.api().generate_assignment(LAB, force=True)
    grading._start_worker(settings)
    spans: dict[str, float] = collections.defaultdict(float)
    stages: dict[str, float] = {}

    def add(key: str) -> Callable:
        return lambda start, end, args, result: spans.__setitem__(key, spans[key] + end - start)

    def ran(start, end, args, result) -> None:
        add("run")(start, end, args, result)
        report = json.loads((Path(args[1]).parent / REPORT).read_text())  # out lies in the private folder
        stages.update(_run_stages(start, end, result, report))

    found = []
    with (_timed(grading, "_grade_one", add("one")), _timed(NbGraderAPI, "autograde", add("autograde")),
          _timed(NbGraderAPI, "generate_feedback", add("feedback")),
          _timed(trusted.TrustedExecute, "preprocess", add("preprocess")),
          _timed(trusted, "run_notebook", ran), _timed(trusted, "verdicts_for", add("judging"))):
        for path in submissions:
            spans.clear()
            stages.clear()
            row = grading._grade_in_worker((path.stem, path))
            assert row.status.startswith("graded"), row.status
            found.append({"grade": spans["one"] - spans["autograde"] - spans["feedback"],
                          "nbgrader": spans["autograde"] - spans["preprocess"],
                          "trusted": spans["preprocess"] - spans["run"] - spans["judging"],
                          "judging": spans["judging"], **stages, "feedback": spans["feedback"]})
    zygote = warm._ZYGOTE
    how = "warm" if zygote is not None and zygote.alive() else f"cold ({zygote.problem if zygote else 'no zygote'})"
    return found, how


def print_breakdown(found: list[dict[str, float]], how: str) -> None:
    rest = found[1:]
    mean = {key: sum(f[key] for f in rest) / len(rest) for key in STAGES}
    graded = sum(v for k, v in mean.items() if k != "feedback")
    sandboxed = sum(v for k, v in mean.items() if STAGES[k].startswith("  "))
    print(f"\nWhere one submission's time goes: one worker, in this process, runs {how}; mean of submissions "
          f"2 to {len(found)} (the first also started the zygote: its sandbox start took {found[0]['sandbox']:.1f} s)")
    print(f"{'stage':<100} {'s':>6} {'share':>6}")
    for key, words in STAGES.items():
        if key == "sandbox":
            print(f"{'the sandboxed run, in all (run_notebook)':<100} {sandboxed:6.2f} {sandboxed / graded:6.0%}")
        share = f"{mean[key] / graded:6.0%}" if key != "feedback" else ""
        print(f"{words:<100} {mean[key]:6.2f} {share}")
    print(f"{'one submission graded, feedback aside':<100} {graded:6.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--students", type=int, default=20)
    parser.add_argument("--breakdown", type=int, default=6, help="submissions graded again, stage by stage")
    args = parser.parse_args()
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="interplab-bench-") as tmp:
        tmp = Path(tmp)
        make_class(tmp / "submissions", args.students)
        one, zygotes_one = time_interplab(tmp / "submissions", 1, tmp)
        two, zygotes_two = time_interplab(tmp / "submissions", 2, tmp)
        stock = time_stock_nbgrader(tmp / "submissions", tmp)
        print(f"{args.students} submissions of lab 02, {os.cpu_count()} cores, load average {load:.1f} at the start, "
              f"{os.getloadavg()[0]:.1f} now")
        for name, s, zygotes in (("interplab, 1 worker", one, zygotes_one),
                                 ("interplab, 2 workers", two, zygotes_two), ("stock nbgrader autograde", stock, None)):
            warm = f"   {zygotes} warm zygote{'s' if zygotes != 1 else ''}" if zygotes is not None else ""
            print(f"{name:<28} {s:7.1f} s   {60 * args.students / s:6.1f} submissions/min{warm}")
        print(f"2 workers vs 1: {one / two:.2f}x    interplab 1 worker vs stock nbgrader: {stock / one:.2f}x    "
              f"interplab 2 workers vs stock: {stock / two:.2f}x", flush=True)
        print_breakdown(*breakdown(sorted((tmp / "submissions").glob("*.ipynb"))[: args.breakdown], tmp))


if __name__ == "__main__":
    main()
