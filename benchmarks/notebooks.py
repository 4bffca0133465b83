"""Wall time and peak memory of every notebook, and of grading one submission.

    python benchmarks/notebooks.py            # all lessons and solutions, then one grading
    python benchmarks/notebooks.py --only grade

Each measurement runs in a fresh process; peak memory is the largest resident set among that
process's descendants (the notebook's kernel), from getrusage. Targets: a notebook within 60 s
and 2 GB on a 2-core laptop. CPU seconds (user + system, the process and all its descendants)
are printed too: on a shared machine other processes stretch the wall clock, not the CPU time, so
the CPU seconds say what the notebook would take on an idle machine with one busy core.
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


def measure_grading() -> dict:
    import nbformat
    from course import completed_lab

    from interplab.grading.grade import grade

    with tempfile.TemporaryDirectory() as tmp:
        subs = Path(tmp) / "subs"
        subs.mkdir()
        nbformat.write(completed_lab(), str(subs / "student.ipynb"))
        start = time.perf_counter()
        rows = grade(ROOT, "02_induction", subs, Path(tmp) / "grades.csv", work=Path(tmp) / "work")
        return {"seconds": time.perf_counter() - start, "problem": None if rows[0].status == "graded" else rows[0].status}


def child(task: str) -> None:
    result = measure_grading() if task == "grade" else measure_notebook(Path(task))
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_CHILDREN, resource.RUSAGE_SELF)]
    peak_kb = max(u.ru_maxrss for u in usage)
    cpu = sum(u.ru_utime + u.ru_stime for u in usage)
    print(json.dumps({**result, "peak_mb": peak_kb / 1024, "cpu_seconds": cpu}))


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=["notebooks", "grade"])
    parser.add_argument("--child")
    parser.add_argument("paths", nargs="*", type=Path, help="only these notebooks (default: every lesson and solution)")
    args = parser.parse_args()
    if args.child:
        return child(args.child)
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": "1"}
    tasks = []
    if args.only != "grade":
        paths = args.paths or sorted((ROOT / "lessons").glob("*.ipynb")) + sorted((ROOT / "solutions").glob("*/*.ipynb"))
        tasks += [str(p.resolve()) for p in paths]
    if args.only != "notebooks":
        tasks.append("grade")
    print(f"{'what':<52} {'wall s':>8} {'CPU s':>7} {'peak MB':>9}  status")
    for task in tasks:
        out = subprocess.run([sys.executable, __file__, "--child", task], capture_output=True, text=True, env=env)
        name = "grading one submission of 02_induction" if task == "grade" else _shown(Path(task))
        try:
            result = json.loads(out.stdout.strip().splitlines()[-1])
        except (IndexError, json.JSONDecodeError):
            print(f"{name:<52} failed: {out.stderr.strip().splitlines()[-1:]}")
            continue
        status = "ok" if not result["problem"] else result["problem"]
        print(f"{name:<52} {result['seconds']:>8.1f} {result['cpu_seconds']:>7.1f} {result['peak_mb']:>9.0f}  {status}")


if __name__ == "__main__":
    main()
