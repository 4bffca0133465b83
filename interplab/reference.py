"""Reference outputs on disk: what the solution (and each known mistake) returned.

Layout of one lab's references, ``<root>/<lab>/``::

    meta.json                               lab, seed, the known mistakes and their messages
    expected/<inputs>/<exercise>.safetensors
    mistakes/<mistake>/<inputs>/<exercise>.safetensors

``<inputs>`` is ``public`` (the inputs a student checks against; shipped inside the package)
or ``hidden`` (the grader's inputs for one private seed; kept in ``autograder/`` or wherever
the instructor keeps secrets, never in the student's reach).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from interplab.answers import Case, load_cases
from interplab.judge import Mistake

PUBLIC, HIDDEN = "public", "hidden"
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
                f"`interplab references` (see the README, 'Grading a class')"
            )
        meta = json.loads(meta_path.read_text())
        if meta.get("lab") != lab:
            raise MissingReferences(f"{meta_path} holds references for {meta.get('lab')!r}, not {lab!r}")
        return cls(directory, inputs, meta)

    @property
    def seed(self) -> int:
        return int(self.meta["seed"]) if self.inputs == HIDDEN else int(self.meta["public_seed"])

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


def write_meta(directory: Path, meta: dict) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
