"""Every solution notebook runs top to bottom on the CPU tier, and labs stay in sync (lessons: test_lessons.py)."""

import subprocess
import sys

import pytest
from course import ROOT, completed_lab, read

from interplab.exercises import get_lab
from interplab.grading.build import drift
from interplab.grading.execute import run_notebook

NOTEBOOKS = sorted((ROOT / "solutions").glob("*/*.ipynb"))


def errors(nb) -> list[str]:
    return [f"cell {i}: {o.get('ename')}: {o.get('evalue')}" for i, c in enumerate(nb.cells) if c.cell_type == "code"
            for o in c.get("outputs", []) if o.get("output_type") == "error"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[str(p.relative_to(ROOT)) for p in NOTEBOOKS])
def test_notebook_runs_without_errors_on_cpu(path, tmp_path):
    run = run_notebook(path, tmp_path / "out.ipynb", cwd=path.parent, env={"INTERPLAB_TIER": "cpu"})
    assert run.problem is None, run.problem
    assert errors(run.notebook) == []


def test_labs_are_generated_from_solutions():
    assert drift(ROOT) == []


@pytest.mark.parametrize("folder", ["solutions", "labs", "lessons"])
def test_no_outputs_are_committed(folder):
    for path in (ROOT / folder).rglob("*.ipynb"):
        assert not any(c.get("outputs") for c in read(path).cells if c.cell_type == "code"), path


def test_interplab_check_reports_a_finished_and_an_untouched_lab(tmp_path):
    import nbformat

    done = tmp_path / "done.ipynb"
    nbformat.write(completed_lab(), str(done))
    finished = subprocess.run([sys.executable, "-m", "interplab.cli", "check", str(done)], capture_output=True, text=True)
    assert finished.returncode == 0, finished.stdout + finished.stderr
    n = len(get_lab("02_induction").exercises)
    assert f"{n} of {n} exercises pass" in finished.stdout
    untouched = subprocess.run([sys.executable, "-m", "interplab.cli", "check", str(ROOT / "labs/02_induction/induction_heads.ipynb")],
                               capture_output=True, text=True)
    assert untouched.returncode == 1
    assert f"0 of {n} exercises pass" in untouched.stdout and "not done yet" in untouched.stdout
