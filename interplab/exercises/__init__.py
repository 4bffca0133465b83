"""What each lab grades: its exercises, the inputs they are run on, and their tolerances.

Nothing here solves an exercise. A spec says *which inputs* a student's function is called
on (built from a seed, so the grader's hidden inputs differ from the public ones the student
checks against) and *how closely* its output must match the reference, which is made by
running the instructor's solution notebook on the same inputs (see ``interplab.references``).
"""

from __future__ import annotations

import hashlib
import importlib
import operator
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

import torch

from interplab.syllabus import graded_labs, module

#: Seed of the inputs behind the checks a student runs while working (public references).
PUBLIC_SEED = 0

T = TypeVar("T")


@dataclass(frozen=True)
class Inputs:
    """Builds one exercise's input cases from a seed; every random draw comes from here.

    The seed is the instructor's secret (any string; ``interplab references`` makes a long random
    one for a private set). Cases are built from it only in the grader's own processes: a student's
    kernel is handed the built cases as data (``interplab.casefile``), never the seed.
    """

    seed: int | str
    exercise: str

    def generator(self, tag: str = "") -> torch.Generator:
        """A generator seeded by (seed, exercise, tag): independent streams per use."""
        digest = hashlib.sha256(f"{self.seed}/{self.exercise}/{tag}".encode()).digest()
        return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little"))

    def randint(self, high: int, size: tuple[int, ...], tag: str, low: int = 0) -> torch.Tensor:
        return torch.randint(low, high, size, generator=self.generator(tag))

    def randn(self, *size: int, tag: str) -> torch.Tensor:
        return torch.randn(*size, generator=self.generator(tag))

    def choose(self, options: Sequence[T], tag: str, clash: Callable[[T, T], bool] = operator.eq) -> T:
        """One of ``options``, drawn by the seed, and never one that clashes with the public inputs' draw.

        A size, a layer or a feature chosen this way makes every hidden case differ from the
        public ones, so an answer copied from the public references cannot fit a hidden case.
        ``clash`` says which options are too like the public one (default: the same option; for
        tuples of sizes, e.g. any size in common).
        """
        public = options[_index(Inputs(PUBLIC_SEED, self.exercise).generator(tag), len(options))]
        if str(self.seed) == str(PUBLIC_SEED):
            return public
        rest = [option for option in options if not clash(option, public)]
        if not rest:
            raise ValueError(f"every option clashes with the public one ({public!r}): give choose more options")
        return rest[_index(self.generator(tag), len(rest))]


def _index(generator: torch.Generator, n: int) -> int:
    return int(torch.randint(0, n, (1,), generator=generator))


#: A check for answers that are random by design: (answer, reference, the case's inputs) to a
#: message saying what is wrong, or None when the answer is right.
PropertyCheck = Callable[[torch.Tensor, torch.Tensor, tuple], "str | None"]


def returned(kind: type, name: str) -> Callable[[object], torch.Tensor]:
    """An exercise's ``output``: the weights of the ``kind`` object (an SAE, a probe) the student's
    function must return, flattened; anything else is refused with a message saying what to return."""

    def flat(result: object) -> torch.Tensor:
        if not isinstance(result, kind):
            hint = f" (did you forget to `return {name}`?)" if result is None else ""
            raise TypeError(f"your function returned a {type(result).__name__}{hint}; return the {kind.__name__}")
        return result.flat()

    return flat

@dataclass(frozen=True)
class Exercise:
    """One graded exercise: a function the student writes, and how it is judged."""

    name: str
    cases: Callable[[Inputs], list[tuple]]
    rtol: float = 1e-4
    atol: float = 1e-5
    #: When set, answers are judged by this check against the reference instead of closeness.
    properties: PropertyCheck | None = None
    #: Earlier exercises whose functions this one is expected to call: a mistake there costs here too.
    uses: tuple[str, ...] = ()
    #: Turns what the student's function returned into the answer to record (in the student's
    #: kernel), e.g. a trained SAE into its weights. Raise TypeError to refuse it.
    output: Callable[[Any], Any] | None = None
    #: How many items at the end of each case are for the judge only (held-out data), not arguments.
    judge_only: int = 0

    def build_cases(self, seed: int | str) -> list[tuple]:
        """Every case in full: the function's arguments, then the items for the judge only."""
        return self.cases(Inputs(seed, self.name))

    def arguments(self, case: tuple) -> tuple:
        """The part of a full case that the student's function is called with."""
        return case[: len(case) - self.judge_only]

    def judge_items(self, case: tuple) -> tuple:
        """The part of a full case that only the judge sees (held-out data, true features)."""
        return case[len(case) - self.judge_only:] if self.judge_only else ()

    def answer(self, fn: Callable, arguments: tuple) -> Any:
        """What the student's ``fn`` answers on one case's arguments, converted by ``output``."""
        result = fn(*arguments)
        return self.output(result) if self.output is not None else result


@dataclass(frozen=True)
class LabSpec:
    """A lab: ``solutions/<name>/<notebook>.ipynb`` and the exercises graded in it."""

    name: str
    exercises: tuple[Exercise, ...]

    @property
    def notebook(self) -> str:
        """The lab's notebook, as the syllabus (the course's one manifest) names it."""
        return module(self.name).notebook

    def exercise(self, name: str) -> Exercise:
        for ex in self.exercises:
            if ex.name == name:
                return ex
        known = ", ".join(e.name for e in self.exercises)
        raise KeyError(f"lab {self.name} has no exercise {name!r}; its exercises are: {known}")

    @staticmethod
    def test_cell_id(exercise: str) -> str:
        """The nbgrader grade_id of the locked cell that checks ``exercise``."""
        return f"check_{exercise}"


def get_lab(name: str) -> LabSpec:
    """The spec of a lab by its name, e.g. ``"02_induction"``, from the module the syllabus names.

    A spec is imported only when its lab is used: it pulls in the models it runs (the induction lab
    imports TransformerLens; the superposition lab does not).
    """
    labs = {m.lab: m.spec for m in graded_labs()}
    if name not in labs:
        raise KeyError(f"no lab named {name!r}; the labs are: {', '.join(labs)}")
    return importlib.import_module(f"interplab.exercises.{labs[name]}").LAB


def all_labs() -> list[LabSpec]:
    """Every graded lab, in the syllabus's order."""
    return [get_lab(m.lab) for m in graded_labs()]
