"""Helpers the tests share: where the course lives, and how to make a student's submission."""

from __future__ import annotations

import ast
import copy
import math
from pathlib import Path

import einops
import nbformat
import torch
from jaxtyping import Bool, Float, Int

from interplab.exercises import get_lab
from interplab.grading.references import Mutant, load_mutants

ROOT = Path(__file__).resolve().parents[1]
LAB = "02_induction"


def solution_of(lab: str) -> Path:
    return ROOT / "solutions" / lab / f"{get_lab(lab).notebook}.ipynb"


def release_of(lab: str) -> Path:
    return ROOT / "labs" / lab / f"{get_lab(lab).notebook}.ipynb"


SOLUTION = solution_of(LAB)
RELEASED = release_of(LAB)
MUTANTS = load_mutants(ROOT, LAB)


def read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(str(path), as_version=4)


def errors(nb: nbformat.NotebookNode) -> list[str]:
    """Every error a code cell of an executed notebook raised, as ``cell i: Name: message``."""
    return [f"cell {i}: {o.get('ename')}: {o.get('evalue')}" for i, c in enumerate(nb.cells) if c.cell_type == "code"
            for o in c.get("outputs", []) if o.get("output_type") == "error"]


def graded_notebook(work: Path, lab: str, student: str) -> nbformat.NotebookNode:
    """The notebook nbgrader ran for ``student``: their answers, the source's locked and hidden cells, outputs."""
    return read(work / "autograded" / student / lab / f"{get_lab(lab).notebook}.ipynb")


def answer_cells(nb: nbformat.NotebookNode) -> dict[str, str]:
    """grade_id -> source of every answer (solution) cell."""
    return {c.metadata["nbgrader"]["grade_id"]: c.source for c in nb.cells
            if c.metadata.get("nbgrader", {}).get("solution")}


def strip_markers(source: str) -> str:
    """Answer code as a student would type it: the solution without nbgrader's markers."""
    return "\n".join(line for line in source.splitlines() if "### BEGIN SOLUTION" not in line and "### END SOLUTION" not in line)


def completed_lab(mutant: Mutant | None = None, lab: str = LAB) -> nbformat.NotebookNode:
    """The released lab with every answer cell filled in from the solution (optionally mutated)."""
    solution = mutant.apply(read(solution_of(lab))) if mutant else read(solution_of(lab))
    answers = answer_cells(solution)
    nb = copy.deepcopy(read(release_of(lab)))
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            cell.source = strip_markers(answers[grade_id])
    return nb


def as_graded(nb: nbformat.NotebookNode, lab: str = LAB) -> nbformat.NotebookNode:
    """What nbgrader runs: a submission with its locked cells (hidden tests included) restored."""
    locked = {c.metadata["nbgrader"]["grade_id"]: c.source for c in read(solution_of(lab)).cells
              if c.metadata.get("nbgrader", {}).get("locked")}
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in locked:
            cell.source = locked[grade_id]
    return nb


def check_publicly(lab: str, exercise: str, fn) -> str:
    """What ``lab.check`` would say of ``fn``: the verdict's message (judged on the public inputs)."""
    from interplab.checker import Lab

    return Lab(lab).verdict(exercise, fn).message


def solution_functions(lab: str = LAB, mutant: Mutant | None = None, **names) -> dict:
    """The solution's functions (its answers, and the cells that only define helpers), to compare
    with independent implementations; with ``mutant``, as that known mistake has them.
    ``names`` are imports the cells expect."""
    namespace = {"torch": torch, "einops": einops, "math": math, "Float": Float, "Int": Int, "Bool": Bool,
                 "Tensor": torch.Tensor, **names}
    nb = mutant.apply(read(solution_of(lab))) if mutant else read(solution_of(lab))
    helpers = [c.source for c in nb.cells if c.cell_type == "code" and _only_defines_functions(c.source)
               and not c.metadata.get("nbgrader", {}).get("solution")]
    for source in [*answer_cells(nb).values(), *helpers]:
        exec(compile(source, "solution", "exec"), namespace)
    return namespace


def _only_defines_functions(source: str) -> bool:
    try:
        body = ast.parse(source).body
    except SyntaxError:  # IPython magics
        return False
    return bool(body) and all(isinstance(node, ast.FunctionDef) for node in body)
