"""Reference outputs on disk: what the solution (and each known mistake) returned.

Layout of one lab's references, ``<root>/<lab>/``::

    meta.json                               lab, seed, the known mistakes and their messages
    expected/<inputs>/<exercise>.safetensors
    mistakes/<mistake>/<inputs>/<exercise>.safetensors
    inputs/hidden/<exercise>.safetensors    hidden only: the cases' arguments, as data (``casefile``)
    inputs/judge/<exercise>.safetensors     hidden only: what the judge alone sees (held-out data)

``<inputs>`` is ``public`` (the inputs a student checks against; shipped inside the package)
or ``hidden`` (the grader's inputs for one private seed; kept in ``autograder/`` or wherever
the instructor keeps secrets, never in the student's reach). The hidden cases are built once,
from the seed, when the references are made; graders and kernels only read them back, so the
seed is needed again only to make new references.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

from interplab import casefile
from interplab.answers import Case, load_cases
from interplab.exercises import PUBLIC_SEED, get_lab
from interplab.judge import Mistake

PUBLIC, HIDDEN = "public", "hidden"
#: The folder (under a lab's hidden references) of what only the judge sees.
JUDGE = "judge"
#: The public references travel inside the package, so checks work on Colab too.
PACKAGE_REFERENCES = Path(__file__).parent / "references"


class MissingReferences(FileNotFoundError):
    """References for a lab were never made (or were made for another lab)."""


@dataclass(frozen=True)
class References:
    """One lab's references for one set of inputs."""

    directory: Path
    inputs: str
    meta: dict

    @classmethod
    def open(cls, root: Path, lab: str, inputs: str) -> "References":
        directory = Path(root) / lab
        meta_path = directory / "meta.json"
        if not meta_path.is_file():
            raise MissingReferences(
                f"no references for lab {lab} in {Path(root)}: make them with "
                f"`interplab references` (see docs/instructors.md, the instructor's guide)"
            )
        meta = json.loads(meta_path.read_text())
        if meta.get("lab") != lab:
            raise MissingReferences(f"{meta_path} holds references for {meta.get('lab')!r}, not {lab!r}")
        return cls(directory, inputs, meta)

    @property
    def seed(self) -> str:
        return str(self.meta["seed"] if self.inputs == HIDDEN else self.meta["public_seed"])

    @property
    def arguments_dir(self) -> Path:
        """The hidden cases' arguments: what a kernel is handed while it is graded."""
        return self.directory / "inputs" / HIDDEN

    def cases(self, exercise: str) -> list[tuple]:
        """Every case of ``exercise`` in full (arguments, then the judge's items), as the references saw them."""
        ex = get_lab(self.meta["lab"]).exercise(exercise)
        if self.inputs == PUBLIC:
            return ex.build_cases(PUBLIC_SEED)
        return _hidden_cases(self.directory, exercise, ex.judge_only)

    def expected(self, exercise: str) -> list[Case]:
        cases = load_cases(self.directory / "expected" / self.inputs, exercise)
        if cases is None:
            raise MissingReferences(f"no reference for exercise {exercise} in {self.directory}")
        return cases

    def mistakes(self, exercise: str) -> list[Mistake]:
        found = []
        for name, info in sorted(self.meta.get("mistakes", {}).items()):
            if info["exercise"] != exercise:
                continue
            cases = load_cases(self.directory / "mistakes" / name / self.inputs, exercise)
            if cases is not None:
                found.append(Mistake(name, info["message"], cases))
        return found


@functools.lru_cache(maxsize=64)
def _hidden_cases(directory: Path, exercise: str, judge_only: int) -> list[tuple]:
    """Read once per process: a grader judges a whole class on the same cases."""
    try:
        arguments = casefile.load(directory / "inputs" / HIDDEN, exercise)
        judged = casefile.load(directory / "inputs" / JUDGE, exercise) if judge_only else [()] * len(arguments)
    except casefile.CaseFileError as exc:
        raise MissingReferences(f"{exc}: make the references again with `interplab references`") from exc
    return [args + items for args, items in zip(arguments, judged)]


def write_meta(directory: Path, meta: dict) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
