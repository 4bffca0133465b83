"""The trusted comparison: recorded answers against reference outputs, with a diagnosis.

This runs in the grader's own process (and, for instant feedback, in the student's kernel on
public inputs). It only reads numbers, so nothing a student defines can change its verdict.
When an answer is wrong it says *why* if it can: a known mistake (whose outputs the
references hold, made by running the mutants in ``autograder/mutants``), a wrong shape, NaN,
a transposed result or a constant factor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from interplab.answers import Case, close, is_finite, relative_error
from interplab.exercises import Exercise


@dataclass(frozen=True)
class Mistake:
    """A known mistake: what it outputs on the same inputs, and what to tell the student."""

    name: str
    message: str
    cases: list[Case]


@dataclass(frozen=True)
class Verdict:
    """How an exercise went: the fraction of cases right and a message for the student."""

    exercise: str
    score: float
    message: str

    @property
    def passed(self) -> bool:
        return self.score == 1.0


def _diagnose_error(error: str) -> str:
    if error.startswith("NotImplementedError"):
        return "not done yet: replace `raise NotImplementedError()` with your code"
    return f"your function raised {error}"


def _diagnose_values(ex: Exercise, got: torch.Tensor, want: torch.Tensor) -> str:
    """Say what is off about a wrong numeric answer, most specific reason first."""
    if tuple(got.shape) != tuple(want.shape):
        message = f"expected shape {tuple(want.shape)}, got {tuple(got.shape)}"
        if got.ndim == 2 and tuple(got.T.shape) == tuple(want.shape) and close(got.T, want, ex.rtol, ex.atol):
            message += ": the right numbers, transposed (check the order of your axes)"
        return message
    if not is_finite(got):
        return "your answer contains NaN or infinity"
    ratio = got.to(torch.float64) / want.to(torch.float64)
    ratio = ratio[want.abs() > 1e-6]
    factor = float(ratio.mean()) if ratio.numel() > 1 and torch.isfinite(ratio).all() else 1.0
    if abs(factor - 1) > 1e-3 and float(ratio.std()) < 1e-3 * abs(factor):
        return (
            f"off by a constant factor of {factor:.4g} everywhere: check a mean "
            "against a sum, or a normalisation"
        )
    return f"values differ from the reference (largest gap {relative_error(got, want):.2%} of its scale)"


def _matches(ex: Exercise, got: Case, want: Case) -> bool:
    if got.value is None or want.value is None:
        return False
    return close(got.value, want.value, ex.rtol, ex.atol)


def _identical(a: Case, b: Case) -> bool:
    """Both values present, of one shape, and equal bit for bit (after widening to float64)."""
    if a.value is None or b.value is None or tuple(a.value.shape) != tuple(b.value.shape):
        return False
    try:
        return bool(torch.equal(a.value.to(torch.float64), b.value.to(torch.float64)))
    except (RuntimeError, TypeError):
        return False


#: How strongly a recording shows that it copies the public reference (see ``copy_evidence``).
WEAK, STRONG = "weak", "strong"
COPIED = ("the recorded answers are the public reference outputs, not what your function returned on the "
          "grader's inputs")


def copy_evidence(answer: list[Case] | None, reference: list[Case], public: list[Case]) -> str | None:
    """Whether a recording holds the *public* reference outputs wherever they differ from the hidden ones.

    The grader's inputs come from a secret seed. Where their reference differs from the public
    one (shipped in the package for ``lab.check``), a function run on the grader's inputs does
    not return the public value bit for bit, unless it was copied in, e.g. by writing the
    package's public reference files into the answers folder. (Cases whose inputs do not depend
    on the seed, the shipped model alone, are the same in both and say nothing.)

    A wrong answer with few possible values (an accuracy of 0.0, say) can equal the public one
    by chance, so a match on a single value is only ``WEAK`` evidence; a match on two or more
    different values is ``STRONG``. None: no sign of copying.
    """
    if answer is None or not len(answer) == len(reference) == len(public):
        return None
    differing = [i for i, (hidden, shown) in enumerate(zip(reference, public)) if not _identical(hidden, shown)]
    if not differing or not all(_identical(answer[i], public[i]) for i in differing):
        return None
    values = torch.cat([public[i].value.to(torch.float64).flatten() for i in differing])
    return STRONG if values.unique().numel() > 1 else WEAK


def judge(
    ex: Exercise,
    answer: list[Case] | None,
    reference: list[Case],
    mistakes: list[Mistake] = (),
    case_inputs: Callable[[], list[tuple]] | None = None,
) -> Verdict:
    """Score one exercise: the fraction of its cases that match the reference.

    ``case_inputs`` rebuilds the inputs (only exercises judged by properties need them).
    """
    if answer is None:
        return Verdict(ex.name, 0.0, "no answer was recorded: the check cell did not run to its end "
                       "(did an earlier cell fail, or the kernel stop?)")
    if len(answer) != len(reference):
        return Verdict(ex.name, 0.0, f"recorded {len(answer)} cases where the grader ran {len(reference)}")
    args = case_inputs() if ex.properties is not None else None
    reasons: list[str] = []
    passed = 0
    for i, (got, want) in enumerate(zip(answer, reference)):
        reason = _case_reason(ex, i, got, want, mistakes, args)
        if reason is None:
            passed += 1
        elif reason not in reasons:
            reasons.append(reason)
    n = len(reference)
    if passed == n:
        return Verdict(ex.name, 1.0, f"correct on all {n} cases")
    head = f"{passed} of {n} cases correct" if passed else f"wrong on all {n} cases"
    return Verdict(ex.name, passed / n, f"{head}: " + "; ".join(reasons))


def _case_reason(
    ex: Exercise, i: int, got: Case, want: Case, mistakes: list[Mistake], args: list[tuple] | None
) -> str | None:
    """None when case ``i`` is right, else what is wrong with it."""
    if want.value is None:
        raise ValueError(f"the reference for {ex.name} case {i} is an error: regenerate the references")
    if got.value is None:
        return _diagnose_error(got.error or "an unknown error")
    if ex.properties is not None:
        return ex.properties(got.value, want.value, args[i])
    if close(got.value, want.value, ex.rtol, ex.atol):
        return None
    for mistake in mistakes:
        if i < len(mistake.cases) and _matches(ex, got, mistake.cases[i]):
            return mistake.message
    return _diagnose_values(ex, got.value, want.value)
