"""A private seed changes the hidden inputs, and the solution earns full marks whatever it is."""

from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
from course import ROOT, SOLUTION, as_graded, completed_lab, read

from interplab.answers import load_cases
from interplab.exercises import get_lab
from interplab.grading.references import record, write_inputs
from interplab.grading.trusted import verdicts_for
from interplab.reference import HIDDEN

#: A number of the kind instructors choose, the kind `interplab references --out` makes (a random secret) and
#: a phrase: each costs two runs of the lab, so three.
SEEDS = [918273, "3f9c2a7e51d84b06a1e7c94d2b5f8e13", "an instructor's secret"]
SPEC = get_lab("02_induction")


@pytest.fixture(scope="module")
def recordings(tmp_path_factory):
    """For every seed: the solution's answers (the references) and a student's completed lab's."""
    tmp = tmp_path_factory.mktemp("seeds")
    inputs = {seed: write_inputs(SPEC.name, seed, tmp / f"inputs-{seed}") for seed in SEEDS}
    jobs = [(kind, seed) for seed in SEEDS for kind in ("reference", "student")]
    notebooks = {"reference": read(SOLUTION), "student": as_graded(completed_lab())}
    with ThreadPoolExecutor(max_workers=2) as pool:
        folders = pool.map(lambda job: record(notebooks[job[0]], ROOT, inputs[job[1]], tmp / f"{job[0]}-{job[1]}"), jobs)
    return dict(zip(jobs, folders))


class SeedReferences:
    """References read straight from a recording (what `interplab references` would copy)."""

    inputs = HIDDEN

    def __init__(self, answers, seed):
        self.answers, self.seed = answers, seed

    def expected(self, exercise):
        return load_cases(self.answers / HIDDEN, exercise)

    def mistakes(self, exercise):
        return []

    def cases(self, exercise):
        return SPEC.exercise(exercise).build_cases(self.seed)


@pytest.mark.parametrize("seed", SEEDS)
def test_the_solution_gets_full_marks_for_every_seed(recordings, seed):
    refs = SeedReferences(recordings[("reference", seed)], seed)
    verdicts = verdicts_for(SPEC, refs, recordings[("student", seed)], None)
    assert [v.exercise for v in verdicts if not v.passed] == [], [v.message for v in verdicts if not v.passed]


def test_different_seeds_give_different_hidden_inputs(recordings):
    first, second = (load_cases(recordings[("reference", s)] / HIDDEN, "prev_token_scores") for s in SEEDS[:2])
    assert not torch.equal(first[0].value, second[0].value)


@pytest.mark.parametrize("mine, theirs", [(0, 1), (1, 2), (2, 0)])
def test_answers_from_another_seed_fail(recordings, mine, theirs):
    """Answers copied from someone graded with another seed earn nothing on an exercise judged by value.

    One exception is by design and does not arise here: ``composition_baseline`` asks for an expectation over random
    draws, so two seeds that draw the same two shapes (``BASELINE_SHAPES``: once in 30) agree within its tolerance.
    These seeds draw different ones; a new seed that failed on that exercise alone would have met it."""
    refs = SeedReferences(recordings[("reference", SEEDS[mine])], SEEDS[mine])
    stale = verdicts_for(SPEC, refs, recordings[("student", SEEDS[theirs])], None)
    judged_by_value = [v for v in stale if not SPEC.exercise(v.exercise).properties]
    passed = [v.exercise for v in judged_by_value if v.passed]
    assert judged_by_value and passed == [], passed
