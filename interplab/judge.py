"""The trusted comparison: recorded answers against reference outputs, with a diagnosis.

This runs in the grader's own process (and, for instant feedback, in the student's kernel on
public inputs). It only reads numbers, so nothing a student defines can change its verdict.
When an answer is wrong it says *why* if it can: a known mistake (whose outputs the
references hold, made by running the mutants in ``autograder/mutants``; NaN or infinity where
the mistake has them too still counts as a match), a wrong shape, a transposed result, a
constant factor or offset, the right values in another order; and otherwise *where* the answer
is wrong: which cases, which entries (a row, a column, the diagonal, one position), and how.

``show_values`` says whether a message may quote the reference's numbers: yes for the public
inputs (their references ship with the package), no for the grader's hidden ones, whose
feedback must not hand a student the hidden answers for a second attempt.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable

import torch

from interplab.answers import Case, close, relative_error
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


#: How many wrong entries a message names before it says "and N more".
SHOWN = 3


def _index(flat: int, shape: tuple[int, ...]) -> str:
    """A flat position as the student would index it: ``[1, 2]``."""
    idx = []
    for size in reversed(shape):
        idx.append(flat % size)
        flat //= size
    return "[" + ", ".join(str(i) for i in reversed(idx)) + "]"


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def _listed(items: list[int]) -> str:
    more = f" and {len(items) - SHOWN} more" if len(items) > SHOWN else ""
    return ", ".join(str(i) for i in items[:SHOWN]) + more


def _where(mask: torch.Tensor) -> str:
    """Where the True entries of ``mask`` lie, as a pattern if they form one (a row, the diagonal...)."""
    shape, n_bad = tuple(mask.shape), int(mask.sum())
    if mask.ndim == 0:
        return ""
    if n_bad == mask.numel():
        return "every entry"
    if mask.ndim == 1:
        positions = mask.nonzero().flatten().tolist()
        return f"entr{'y' if n_bad == 1 else 'ies'} {_listed(positions)} of {mask.numel()}"
    head = f"{n_bad} of {mask.numel()} entries"
    if n_bad == 1:
        return head
    if shape[-1] == shape[-2] > 1:
        rows, cols = torch.meshgrid(torch.arange(shape[-2]), torch.arange(shape[-1]), indexing="ij")
        last_two = " of the last two axes" if mask.ndim > 2 else ""
        for name, region in (("on the diagonal", rows == cols), ("above the diagonal", cols > rows),
                             ("below the diagonal", cols < rows)):
            if bool((mask <= region.expand(shape)).all()):
                return f"{head}, all {name}{last_two}"
    for axis in range(mask.ndim):
        hit = mask.movedim(axis, 0).flatten(1).any(1).nonzero().flatten().tolist()  # indices of this axis hit
        if shape[axis] > 1 and len(hit) <= max(1, shape[axis] // 4):
            one, many = {(2, 0): ("row", "rows"), (2, 1): ("column", "columns")}.get(
                (mask.ndim, axis), (f"index {{}} of axis {axis}", f"indices {{}} of axis {axis}"))
            name = many if len(hit) > 1 else one
            return f"{head}, all in " + (name.format(_listed(hit)) if "{}" in name else f"{name} {_listed(hit)}")
    return head


def _examples(got: torch.Tensor, want: torch.Tensor, mask: torch.Tensor, show_values: bool) -> str:
    """The first few wrong entries: where, what the answer has, and (if allowed) what it should."""
    shown = []
    for flat in mask.flatten().nonzero().flatten()[:SHOWN].tolist():
        g, w = float(got.flatten()[flat]), float(want.flatten()[flat])
        where = _index(flat, tuple(got.shape))
        shown.append(f"{where} is {_fmt(g)}" + (f" (expected {_fmt(w)})" if show_values else ""))
    return "e.g. " + ", ".join(shown)


def _nonfinite(got: torch.Tensor) -> torch.Tensor:
    if got.is_floating_point():
        return ~torch.isfinite(got)
    return torch.zeros(got.shape, dtype=torch.bool)


def _diagnose_shape(ex: Exercise, got: torch.Tensor, want: torch.Tensor) -> str:
    """What a wrong shape suggests: transposed, a size-1 axis lost or added, an axis reduced or kept."""
    message = f"expected shape {tuple(want.shape)}, got {tuple(got.shape)}"
    if got.ndim == 2 and tuple(got.T.shape) == tuple(want.shape) and close(got.T, want, ex.rtol, ex.atol):
        return message + ": the right numbers, transposed (check the order of your axes)"
    if got.numel() == want.numel() and close(got.reshape(want.shape), want, ex.rtol, ex.atol):
        if [s for s in got.shape if s != 1] == [s for s in want.shape if s != 1]:
            return message + ": the right numbers, with a size-1 axis too many or too few (keepdim, squeeze, [:, None])"
        return message + ": the right numbers in another shape (check your reshape or view)"
    if got.ndim == want.ndim:
        axes = [i for i in range(got.ndim) if got.shape[i] != want.shape[i]]
        if len(axes) == 1:
            i = axes[0]
            return message + (f": axis {i} has {got.shape[i]} entries instead of {want.shape[i]} (a sum, mean or "
                              "slice over the wrong axis, or a position kept or dropped?)")
    elif got.ndim == want.ndim - 1 and any(tuple(want.shape[:i] + want.shape[i + 1:]) == tuple(got.shape)
                                             for i in range(want.ndim)):
        return message + ": one axis too few (did you reduce over an axis that should stay?)"
    elif got.ndim == want.ndim + 1 and any(tuple(got.shape[:i] + got.shape[i + 1:]) == tuple(want.shape)
                                             for i in range(got.ndim)):
        return message + ": one axis too many (is a sum or mean over one axis missing?)"
    return message


def _diagnose_values(ex: Exercise, got: torch.Tensor, want: torch.Tensor, show_values: bool = True,
                     sizes: Callable[[], list[tuple[str, int]]] = list) -> str:
    """Say what is off about a wrong numeric answer, most specific reason first, and where it is off.

    ``sizes`` lists the sizes of the case's inputs (built only when needed), so that a whole-number factor
    can be named for what it is: the batch size of a sum where a mean belongs, say."""
    if tuple(got.shape) != tuple(want.shape):
        return _diagnose_shape(ex, got, want)
    bad_numbers = _nonfinite(got)
    if bad_numbers.any():
        kinds = " or ".join(k for k, present in (("NaN", bool(torch.isnan(got).any())),
                                                 ("infinity", bool(torch.isinf(got).any()))) if present)
        where = _where(bad_numbers)
        return (f"your answer contains {kinds}" + (f" at {where}" if where else "")
                + " (a log or division of 0, a softmax over a row masked entirely?)")
    g, w = got.to(torch.float64), want.to(torch.float64)
    ratio = (g / w)[w.abs() > 1e-6]
    constant = ratio.numel() > 0 and bool(torch.isfinite(ratio).all()) and float(ratio.std(correction=0)) < 1e-3 * float(ratio.abs().mean())
    factor = float(ratio.mean()) if constant else 1.0
    whole = _whole_factor(factor) if abs(factor - 1) > 1e-3 else None
    if got.ndim == 0:
        if whole is not None:
            return _factor_message(f"your value {_fmt(float(g))}", whole, float(w), sizes, show_values)
        expected = f", expected {_fmt(float(w))}" if show_values else ""
        direction = "too large" if float(g) > float(w) else "too small"
        return f"your value {_fmt(float(g))} is {direction}{expected}"
    if whole is not None:
        return _factor_message("your answer", whole, None, sizes, show_values, " everywhere")
    if ratio.numel() > 1 and abs(factor - 1) > 1e-3:
        return ("off by a constant factor" + (f" of {factor:.4g}" if show_values else "")
                + " everywhere: check a mean against a sum, or a normalisation")
    diff = g - w
    tol = ex.atol + ex.rtol * w.abs()
    if float(diff.abs().mean()) > 0 and float((diff - diff.mean()).abs().max()) <= float(tol.min()):
        return f"off by a constant {float(diff.mean()):+.4g} everywhere: a bias or a mean added or left out?"
    if g.ndim >= 1 and g.shape[-1] > 1 and bool(((diff - diff.mean(-1, keepdim=True)).abs() <= tol).all()):
        return ("each slice along the last axis is off by its own constant: a missing normalisation along the "
                "last axis (log_softmax rather than logits, or a per-row mean left in)?")
    if g.ndim >= 2 and g.shape[-1] == g.shape[-2] and close(g.transpose(-1, -2), w, ex.rtol, ex.atol):
        return "the right numbers, transposed (check the order of your axes)"
    if g.numel() > 1 and close(g.flatten().sort().values, w.flatten().sort().values, ex.rtol, ex.atol):
        return ("the right values in another order: check which axis you index, sort, gather or scatter along, "
                "and the order of your results")
    wrong = ~torch.isclose(g, w, rtol=ex.rtol, atol=ex.atol)
    sign = diff[wrong]
    tendency = " (all too large)" if bool((sign > 0).all()) else " (all too small)" if bool((sign < 0).all()) else ""
    return (f"wrong at {_where(wrong)}{tendency}; {_examples(got, want, wrong, show_values)}; "
            f"largest gap {relative_error(got, want):.2%} of the reference's scale")


def _whole_factor(factor: float) -> int | None:
    """``n`` when ``factor`` is (within 0.1%) a whole number n ≥ 2, ``-n`` when it is 1/n: the signature of a sum
    for a mean (or the reverse) over an axis of n entries."""
    for n, sign in ((factor, 1), (1 / factor if factor else 0.0, -1)):
        if n >= 1.5 and abs(n - round(n)) < 1e-3 * n:
            return sign * round(n)
    return None


def _factor_message(what: str, whole: int, expected: float | None, sizes: Callable[[], list[tuple[str, int]]],
                    show_values: bool, where: str = "") -> str:
    """'your value 47.8 is 8× the expected 5.975: 8 is the size of axis 0 of input 0 (a sum where a mean belongs?)'.

    For hidden inputs the factor is left out, since it would give the expected value away; what it equals (a size
    of the grader's inputs, which the student never sees) is still said."""
    n = abs(whole)
    if show_values:
        times = f"{n}× the expected" if whole > 0 else f"1/{n} of the expected"
        shown = f"{what} is {times}" + (f" {_fmt(expected)}" if expected is not None else "") + where
    else:
        shown = f"{what} is {'larger' if whole > 0 else 'smaller'} than expected by a whole factor{where}"
    matches = [name for name, size in sizes() if size == n]
    if not matches:
        return f"{shown}: check a mean against a sum, or a normalisation"
    why = "a sum where a mean belongs" if whole > 0 else "a mean where a sum belongs"
    equals = f"{n} is the size of" if show_values else "the size of"
    return f"{shown}: {equals} {matches[0]} ({why}?)"


def input_sizes(args: tuple) -> list[tuple[str, int]]:
    """('axis 1 of input 0', 8) for every axis of every tensor among a case's inputs, and ('input 2', n) for a
    whole number among them, in order."""
    sizes = []
    for i, arg in enumerate(args):
        if isinstance(arg, torch.Tensor):
            sizes += [(f"axis {axis} of input {i} (shape {tuple(arg.shape)})", size) for axis, size in enumerate(arg.shape)]
        elif isinstance(arg, int) and not isinstance(arg, bool):
            sizes.append((f"input {i}", arg))
        elif isinstance(arg, (list, tuple)):
            sizes.append((f"the length of input {i}", len(arg)))
    return sizes


def _same_nonfinite(a: torch.Tensor, b: torch.Tensor) -> bool:
    """NaN where the other has NaN, and the same infinities, entry for entry."""
    if not (a.is_floating_point() or b.is_floating_point()):
        return True
    a64, b64 = a.to(torch.float64), b.to(torch.float64)
    return bool(torch.equal(torch.isnan(a64), torch.isnan(b64))) and bool(
        torch.equal(a64.masked_fill(~torch.isinf(a64), 0), b64.masked_fill(~torch.isinf(b64), 0)))


def matches_mistake(ex: Exercise, got: Case, mistake: Case) -> bool:
    """``got`` is what the mistake outputs: NaN and infinities in the same places, the rest within tolerance.

    (A mistake often makes NaN, e.g. a mask over the diagonal that leaves a row all −∞ before a softmax;
    matching it must not need the NaN to compare equal, which ``close`` never lets them.)
    """
    if got.value is None or mistake.value is None or tuple(got.value.shape) != tuple(mistake.value.shape):
        return False
    if not _same_nonfinite(got.value, mistake.value):
        return False
    finite = ~_nonfinite(got.value)
    return close(got.value[finite], mistake.value[finite], ex.rtol, ex.atol)


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


def nameable_mistakes(ex: Exercise, mistakes: list[Mistake], earlier: list[Verdict]) -> list[Mistake]:
    """The known ``mistakes`` of ``ex`` that its verdict may name: none once an exercise it calls has failed
    (``earlier``: the verdicts so far), since its answer is then off by the callee's error and may equal one of its
    own mistakes by chance (with signed influence, lab 08's pruning equals its mistake ``one_short``)."""
    if any(v.exercise in ex.uses and not v.passed for v in earlier):
        return []
    return mistakes


def judge(
    ex: Exercise,
    answer: list[Case] | None,
    reference: list[Case],
    mistakes: list[Mistake] = (),
    case_inputs: Callable[[], list[tuple]] | None = None,
    show_values: bool = True,
) -> Verdict:
    """Score one exercise: the fraction of its cases that match the reference.

    ``case_inputs`` rebuilds the inputs (only exercises judged by properties need them).
    ``show_values``: whether messages may quote the reference's numbers (not for hidden inputs).
    """
    if answer is None:
        return Verdict(ex.name, 0.0, "no answer was recorded: the check cell did not run to its end "
                       "(did an earlier cell fail, or the kernel stop?)")
    if len(answer) != len(reference):
        return Verdict(ex.name, 0.0, f"recorded {len(answer)} cases where the grader ran {len(reference)}")
    case_inputs = functools.cache(case_inputs) if case_inputs is not None else None  # built once, if at all
    args = case_inputs() if ex.properties is not None else None
    reasons: dict[str, list[int]] = {}  # each distinct reason, and the cases it was given for
    for i, (got, want) in enumerate(zip(answer, reference)):
        reason = _case_reason(ex, i, got, want, mistakes, args, show_values, _lazy_sizes(case_inputs, i))
        if reason is not None:
            reasons.setdefault(reason, []).append(i)
    n = len(reference)
    wrong = sorted(i for cases in reasons.values() for i in cases)
    if not wrong:
        return Verdict(ex.name, 1.0, f"correct on all {n} cases" if n > 1 else "correct on its one case")
    if len(wrong) == n:
        head = f"wrong on all {n} cases" if n > 1 else "wrong"
    else:
        head = f"{n - len(wrong)} of {n} cases correct, wrong on {_cases(wrong)}"
    parts = [reason if len(reasons) == 1 else f"{_cases(cases)}: {reason}" for reason, cases in reasons.items()]
    return Verdict(ex.name, (n - len(wrong)) / n, f"{head}: " + "; ".join(parts))


def _cases(indices: list[int]) -> str:
    return f"case{'s' if len(indices) > 1 else ''} " + ", ".join(str(i) for i in indices)


def _case_reason(
    ex: Exercise, i: int, got: Case, want: Case, mistakes: list[Mistake], args: list[tuple] | None,
    show_values: bool = True, sizes: Callable[[], list[tuple[str, int]]] = list,
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
        if i < len(mistake.cases) and matches_mistake(ex, got, mistake.cases[i]):
            return mistake.message
    return _diagnose_values(ex, got.value, want.value, show_values, sizes)


def _lazy_sizes(case_inputs: Callable[[], list[tuple]] | None, i: int) -> Callable[[], list[tuple[str, int]]]:
    """The sizes of case ``i``'s inputs, rebuilt only if a message needs them (and none if they cannot be)."""
    def sizes() -> list[tuple[str, int]]:
        if case_inputs is None:
            return []
        try:
            return input_sizes(case_inputs()[i])
        except Exception:  # noqa: BLE001 - a message without the size is still a message
            return []
    return sizes
