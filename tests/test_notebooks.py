"""Labs stay in sync with their solutions, and nothing is committed with outputs.

Every solution runs top to bottom on the CPU tier where its class is graded (``classes.GradedClass`` and
``test_grading.py``): the completed lab is the solution's answers with its locked and hidden cells, and the
grader runs it in the sandbox a student's submission meets. Lessons run in ``test_lessons.py``.
"""

import subprocess
import sys

import pytest
from course import ROOT, completed_lab, read

from interplab.exercises import get_lab
from interplab.grading.build import drift


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
