"""The checks inside a lab notebook.

Each exercise ends with a locked cell::

    lab.check("prev_token_scores", prev_token_scores)      # instant feedback, public inputs
    ### BEGIN HIDDEN TESTS
    lab.record("prev_token_scores", prev_token_scores)     # the grader's inputs (hidden)
    ### END HIDDEN TESTS

While a student works, ``check`` runs their function on the public inputs, compares the
output with the shipped public references and explains a wrong answer. ``record`` does
nothing then (students never see it). When the grader or the reference builder runs the
notebook, it sets ``INTERPLAB_RECORD_DIR``: then both calls only *record* outputs, and the
verdict is reached outside the kernel. ``record`` runs the function on the hidden cases that
the grader built from its secret seed and handed over as data in ``INTERPLAB_INPUTS_DIR``
(``interplab.casefile``): the seed itself never enters the kernel.
``INTERPLAB_RECORD_INPUTS`` says which inputs are wanted (``public``, ``hidden``, or both, the
default): the grader needs only the hidden ones, ``interplab check`` only the public ones, and
a lab that trains models in its exercises should not train them twice for nothing. For the same
reason ``INTERPLAB_RECORD_ONLY`` names the exercises to record when a run needs only some (a
known mistake's run, by ``interplab references``).
"""

from __future__ import annotations

import os
import traceback
from pathlib import Path
from typing import Callable

from interplab import casefile
from interplab.answers import Case, as_tensor, save_cases
from interplab.exercises import PUBLIC_SEED, Exercise, get_lab
from interplab.judge import Verdict, judge
from interplab.reference import HIDDEN, PACKAGE_REFERENCES, PUBLIC, References

RECORD_DIR_ENV = "INTERPLAB_RECORD_DIR"
INPUTS_DIR_ENV = "INTERPLAB_INPUTS_DIR"
RECORD_INPUTS_ENV = "INTERPLAB_RECORD_INPUTS"
RECORD_ONLY_ENV = "INTERPLAB_RECORD_ONLY"


class CheckFailed(AssertionError):
    """A student's answer is wrong; the message says how.

    It is still an error, so Run All stops at the first failed check and the student sees that the
    lab is not done. But the traceback would only lead into this module, which the student has no
    reason to read: IPython shows what ``_render_traceback_`` returns instead, the message alone.
    """

    def _render_traceback_(self) -> list[str]:
        return [f"\x1b[1;31m❌ {self}\x1b[0m", "Fix your function above, run its cell, then run this check again."]


def run_cases(ex: Exercise, fn: Callable, cases: list[tuple]) -> list[Case]:
    """Call ``fn`` on every case's arguments, keeping each answer or the error it raised."""
    results = []
    for args in cases:
        try:
            results.append(Case(as_tensor(ex.answer(fn, args))))
        except Exception as exc:  # a student's bug is an answer too: record it, go on
            last = traceback.extract_tb(exc.__traceback__)[-1:]
            where = f" (line {last[0].lineno})" if last else ""
            results.append(Case(None, f"{type(exc).__name__}: {exc}{where}"))
    return results


class Lab:
    """A lab's checks, bound to one notebook session."""

    def __init__(self, name: str):
        self.spec = get_lab(name)
        record_dir = os.environ.get(RECORD_DIR_ENV)
        self.record_dir = Path(record_dir) if record_dir else None
        #: Which inputs' answers this run records, when it records (PUBLIC, HIDDEN).
        self.record_inputs = os.environ.get(RECORD_INPUTS_ENV, f"{PUBLIC},{HIDDEN}").split(",")
        #: The exercises whose answers this run records (all when unset): a known mistake's run needs
        #: only its own exercise's, and skips training what other exercises train.
        only = os.environ.get(RECORD_ONLY_ENV)
        self.record_only = set(only.split(",")) if only else None

    @property
    def recording(self) -> bool:
        return self.record_dir is not None

    def _records(self, exercise: str, inputs: str) -> bool:
        return inputs in self.record_inputs and (self.record_only is None or exercise in self.record_only)

    def verdict(self, exercise: str, fn: Callable) -> Verdict:
        """``fn`` judged on the public inputs against the shipped public references."""
        ex = self.spec.exercise(exercise)
        refs = References.open(PACKAGE_REFERENCES, self.spec.name, PUBLIC)
        answers = run_cases(ex, fn, [ex.arguments(case) for case in ex.build_cases(PUBLIC_SEED)])
        # The judge gets the cases afresh (built again only if it needs them): the function may have
        # changed its arguments in place (an SAE or probe trained, a generator drawn from).
        return judge(ex, answers, refs.expected(exercise), refs.mistakes(exercise), lambda: ex.build_cases(PUBLIC_SEED))

    def check(self, exercise: str, fn: Callable) -> None:
        """Run ``fn`` on the public inputs: say whether it is right, and why not."""
        if self.recording:
            if self._records(exercise, PUBLIC):
                ex = self.spec.exercise(exercise)
                arguments = [ex.arguments(case) for case in ex.build_cases(PUBLIC_SEED)]
                save_cases(self.record_dir / PUBLIC, exercise, run_cases(ex, fn, arguments))
            return
        verdict = self.verdict(exercise, fn)
        if not verdict.passed:
            raise CheckFailed(f"{exercise}: {verdict.message}")
        print(f"✅ {exercise}: {verdict.message}.")

    def record(self, exercise: str, fn: Callable) -> None:
        """Record ``fn``'s outputs on the grader's inputs (only while grading)."""
        if not self.recording or not self._records(exercise, HIDDEN):
            return
        ex: Exercise = self.spec.exercise(exercise)
        inputs = os.environ.get(INPUTS_DIR_ENV)
        if not inputs:
            raise RuntimeError(f"recording hidden answers needs the grader's input cases: {INPUTS_DIR_ENV} is not set")
        save_cases(self.record_dir / HIDDEN, exercise, run_cases(ex, fn, casefile.load(Path(inputs), exercise)))
