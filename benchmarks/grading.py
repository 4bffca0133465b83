"""Grading throughput: interplab (sandboxed) with 1 and 2 workers, against stock nbgrader.

    python benchmarks/grading.py [--students 20]

Makes a class of lab 02 submissions (the solution and every known mistake, in turn), grades it
with ``interplab grade`` using 1 and then 2 workers, and with stock ``nbgrader autograde`` (its
own Execute step, no sandbox) on the same notebooks, and prints submissions per minute and the
ratios. Run it on an otherwise idle machine: the figures are wall-clock.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def make_class(folder: Path, n: int) -> None:
    from course import MUTANTS, completed_lab

    folder.mkdir(parents=True)
    variants = [None, *MUTANTS]
    for i in range(n):
        nbformat.write(completed_lab(variants[i % len(variants)]), str(folder / f"student{i:03d}.ipynb"))


def time_interplab(submissions: Path, workers: int, tmp: Path) -> float:
    from interplab.grading.grade import grade

    start = time.perf_counter()
    rows = grade(ROOT, "02_induction", submissions, tmp / f"grades-{workers}.csv", work=tmp / f"work-{workers}",
                 feedback=False, workers=workers)
    elapsed = time.perf_counter() - start
    assert all(r.status.startswith("graded") for r in rows), [r.status for r in rows]
    return elapsed


def time_stock_nbgrader(submissions: Path, tmp: Path) -> float:
    """nbgrader as shipped: a plain course folder, its own Execute preprocessor, one process."""
    course = tmp / "stock"
    (course / "source").mkdir(parents=True)
    shutil.copytree(ROOT / "solutions" / "02_induction", course / "source" / "02_induction")
    (course / "nbgrader_config.py").write_text('c = get_config()\nc.CourseDirectory.course_id = "stock"\n')
    for nb in sorted(submissions.glob("*.ipynb")):
        target = course / "submitted" / nb.stem / "02_induction"
        target.mkdir(parents=True)
        shutil.copy(nb, target / "induction_heads.ipynb")
    nbgrader = [sys.executable, "-m", "nbgrader"]
    subprocess.run(nbgrader + ["generate_assignment", "02_induction", "--force"], cwd=course, check=True, capture_output=True)
    start = time.perf_counter()
    subprocess.run(nbgrader + ["autograde", "02_induction", "--force"], cwd=course, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--students", type=int, default=20)
    args = parser.parse_args()
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    with tempfile.TemporaryDirectory(prefix="interplab-bench-") as tmp:
        tmp = Path(tmp)
        make_class(tmp / "submissions", args.students)
        seconds = {
            "interplab, 1 worker": time_interplab(tmp / "submissions", 1, tmp),
            "interplab, 2 workers": time_interplab(tmp / "submissions", 2, tmp),
            "stock nbgrader autograde": time_stock_nbgrader(tmp / "submissions", tmp),
        }
    print(f"{args.students} submissions of lab 02, {os.cpu_count()} cores")
    for name, s in seconds.items():
        print(f"{name:<28} {s:7.1f} s   {60 * args.students / s:6.1f} submissions/min")
    one, two, stock = seconds.values()
    print(f"2 workers vs 1: {one / two:.2f}x    interplab 1 worker vs stock nbgrader: {stock / one:.2f}x    "
          f"interplab 2 workers vs stock: {stock / two:.2f}x")


if __name__ == "__main__":
    main()
