"""``interplab check NOTEBOOK``: run a student's notebook and report its visible checks.

The notebook runs in a fresh kernel with recording on; each exercise's answers on the public
inputs are then judged here against the public references: the same verdicts a student sees
cell by cell, gathered in one report (useful before submitting, and for teaching assistants).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import nbformat

from interplab.answers import AnswerError, load_cases
from interplab.checker import RECORD_DIR_ENV, RECORD_INPUTS_ENV
from interplab.exercises import PUBLIC_SEED, LabSpec, all_labs
from interplab.grading.execute import run_notebook
from interplab.judge import Verdict, judge, nameable_mistakes
from interplab.reference import PACKAGE_REFERENCES, PUBLIC, References


def lab_of(nb: nbformat.NotebookNode) -> LabSpec:
    """Which lab a notebook belongs to, from the test cells it contains."""
    ids = {c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells}
    for spec in all_labs():
        if any(LabSpec.test_cell_id(ex.name) in ids for ex in spec.exercises):
            return spec
    raise ValueError("this notebook has none of the check cells of a known lab")


def check_notebook(path: Path) -> tuple[list[Verdict], str | None]:
    """Run ``path`` and judge its public answers; returns the verdicts and any run problem."""
    spec = lab_of(nbformat.read(str(path), as_version=4))
    refs = References.open(PACKAGE_REFERENCES, spec.name, PUBLIC)
    with tempfile.TemporaryDirectory(prefix="interplab-check-") as tmp:
        tmp = Path(tmp)
        run = run_notebook(path, tmp / "executed.ipynb", cwd=path.parent.resolve(),
                           env={RECORD_DIR_ENV: str(tmp / "answers"), RECORD_INPUTS_ENV: PUBLIC})
        verdicts = []
        for ex in spec.exercises:
            try:
                answer = load_cases(tmp / "answers" / PUBLIC, ex.name)
            except AnswerError as exc:
                verdicts.append(Verdict(ex.name, 0.0, str(exc)))
                continue
            mistakes = nameable_mistakes(ex, refs.mistakes(ex.name), verdicts)
            verdicts.append(judge(ex, answer, refs.expected(ex.name), mistakes, lambda ex=ex: ex.build_cases(PUBLIC_SEED)))
    return verdicts, run.problem


def format_report(verdicts: list[Verdict], problem: str | None) -> str:
    lines = [f"{'✅' if v.passed else '❌'} {v.exercise:<24} {v.message}" for v in verdicts]
    done = sum(v.passed for v in verdicts)
    lines.append(f"\n{done} of {len(verdicts)} exercises pass their checks.")
    if problem:
        lines.append(f"Note: {problem}")
    return "\n".join(lines)
