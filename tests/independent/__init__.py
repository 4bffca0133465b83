"""Answers written independently of the solution, to measure how often honest work looks copied.

Layout: ``tests/independent/<lab>/<exercise>/<style>.py``, one answer cell per file, as a student
would type it in the lab (the stub's signature kept or not, comments, helpers, imports). Each is
written in its own style (loops or vectorised, einsum or matmul, other helpers, other names), and
some follow the lab's hints as closely as an honest student would. An answer may use what the lab's
notebook has in scope: its imports and the functions of the other exercises.

To add a lab: make ``tests/independent/<lab>/`` with a folder of three or more answers for every
graded exercise. ``tests/test_similarity.py`` then checks each answer with the lab's public check
and counts how many the similarity report would flag.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from course import read, solution_functions, solution_of

CORPUS = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Answer:
    lab: str
    exercise: str
    style: str
    path: Path

    @property
    def source(self) -> str:
        return self.path.read_text()

    @property
    def id(self) -> str:
        return f"{self.lab}/{self.exercise}/{self.style}"


def labs() -> list[str]:
    """The labs that have a corpus."""
    return sorted(p.name for p in CORPUS.iterdir() if p.is_dir() and not p.name.startswith(("_", ".")))


def answers(lab: str | None = None) -> list[Answer]:
    """Every independent answer (of one lab, or of all)."""
    return [Answer(path.parts[-3], path.parts[-2], path.stem, path)
            for name in ([lab] if lab else labs()) for path in sorted((CORPUS / name).glob("*/*.py"))]


def notebook_namespace(lab: str) -> dict:
    """What a lab's notebook has in scope when a student's answer runs: the solution notebook's
    imports, and the solution's functions (the other exercises and the helper cells)."""
    names: dict = {}
    for cell in read(solution_of(lab)).cells:
        if cell.cell_type != "code":
            continue
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:  # a cell with an IPython magic (the Colab set-up)
            continue
        imports = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
        exec(compile(ast.Module(body=imports, type_ignores=[]), f"{lab} imports", "exec"), names)
    names.pop("__builtins__", None)
    return solution_functions(lab, **names)


def function_of(answer: Answer, namespace: dict):
    """The answer's function, defined in a copy of the lab's namespace (the answer's helpers and
    imports stay in that copy, so answers never see each other's)."""
    scope = dict(namespace)
    exec(compile(answer.source, str(answer.path), "exec"), scope)
    return scope[answer.exercise]
