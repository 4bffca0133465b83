"""Wall time and peak memory of every notebook, and of grading one submission.

    python benchmarks/notebooks.py            # all lessons and solutions, then one grading
    python benchmarks/notebooks.py --only grade
    python benchmarks/notebooks.py --only grade --lab 06_patching
    python benchmarks/notebooks.py --only notebooks --match 06     # the notebooks whose path contains "06"

Each measurement runs in a fresh process; peak memory is the largest resident set among that
process's descendants (the notebook's kernel), from getrusage; CPU s is the user and system time of
the process and its descendants, which a shared machine's load does not inflate as it does the wall
time (one torch thread: on an idle machine the wall time is about the CPU time). Targets: a notebook
within 60 s and 2 GB on a 2-core laptop.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def measure_notebook(path: Path) -> dict:
    from interplab.grading.execute import run_notebook

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        run = run_notebook(path, Path(tmp) / "out.ipynb", cwd=path.parent, env={"INTERPLAB_TIER": "cpu"})
        return {"seconds": time.perf_counter() - start, "problem": run.problem}


def measure_grading(lab: str) -> dict:
    import nbformat
    from course import completed_lab

    from interplab.grading.grade import grade

    with tempfile.TemporaryDirectory() as tmp:
        subs = Path(tmp) / "subs"
        subs.mkdir()
        nbformat.write(completed_lab(lab=lab), str(subs / "student.ipynb"))
        start = time.perf_counter()
        rows = grade(ROOT, lab, subs, Path(tmp) / "grades.csv", work=Path(tmp) / "work")
        return {"seconds": time.perf_counter() - start, "problem": None if rows[0].status == "graded" else rows[0].status}


def child(task: str) -> None:
    result = measure_grading(task.removeprefix("grade:")) if task.startswith("grade:") else measure_notebook(Path(task))
    children, own = resource.getrusage(resource.RUSAGE_CHILDREN), resource.getrusage(resource.RUSAGE_SELF)
    cpu = children.ru_utime + children.ru_stime + own.ru_utime + own.ru_stime
    print(json.dumps({**result, "peak_mb": max(children.ru_maxrss, own.ru_maxrss) / 1024, "cpu_s": cpu}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=["notebooks", "grade"])
    parser.add_argument("--lab", default="02_induction", help="the lab whose grading is timed")
    parser.add_argument("--match", default="", help="only the notebooks whose path contains this")
    parser.add_argument("--child")
    args = parser.parse_args()
    if args.child:
        return child(args.child)
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": "1"}
    tasks = []
    if args.only != "grade":
        tasks += [str(p) for p in sorted((ROOT / "lessons").glob("*.ipynb")) + sorted((ROOT / "solutions").glob("*/*.ipynb"))
                  if args.match in str(p.relative_to(ROOT))]
    if args.only != "notebooks":
        tasks.append(f"grade:{args.lab}")
    print(f"{'what':<52} {'wall s':>8} {'CPU s':>7} {'peak MB':>9}  status")
    for task in tasks:
        out = subprocess.run([sys.executable, __file__, "--child", task], capture_output=True, text=True, env=env)
        name = f"grading one submission of {args.lab}" if task.startswith("grade:") else str(Path(task).relative_to(ROOT))
        try:
            result = json.loads(out.stdout.strip().splitlines()[-1])
        except (IndexError, json.JSONDecodeError):
            print(f"{name:<52} failed: {out.stderr.strip().splitlines()[-1:]}")
            continue
        status = "ok" if not result["problem"] else result["problem"]
        print(f"{name:<52} {result['seconds']:>8.1f} {result['cpu_s']:>7.1f} {result['peak_mb']:>9.0f}  {status}")


if __name__ == "__main__":
    main()
