"""No hidden case can be answered from the public references.

The public references ship with the package (students check against them), so a student can copy
them. Every hidden case of every lab must therefore be one that no public output fits: submitted as
the answer to any hidden case, each public reference output is judged wrong (by value, or by the
properties that judge answers random by design). The inputs draw sizes, layers, features and model
weights from the seed with ``Inputs.choose`` and ``models.perturbed`` to make that so for any seed.
(That no secret reaches the kernel is shown end to end in ``test_secrets.py``.)
"""

import pytest
from course import ROOT

from interplab import casefile
from interplab.answers import Case
from interplab.exercises import all_labs
from interplab.grading.course import default_references
from interplab.judge import judge
from interplab.reference import HIDDEN, PACKAGE_REFERENCES, PUBLIC, References

EXERCISES = [(spec.name, ex) for spec in all_labs() for ex in spec.exercises]


@pytest.mark.parametrize("lab, ex", EXERCISES, ids=[f"{lab}-{ex.name}" for lab, ex in EXERCISES])
def test_no_public_output_answers_a_hidden_case(lab, ex):
    hidden = References.open(default_references(ROOT), lab, HIDDEN)
    public = References.open(PACKAGE_REFERENCES, lab, PUBLIC).expected(ex.name)
    expected = hidden.expected(ex.name)
    for j, copied in enumerate(public):
        # the same public output handed in for every hidden case: not one may pass
        verdict = judge(ex, [Case(copied.value)] * len(expected), expected, [], lambda: hidden.cases(ex.name))
        assert verdict.score == 0.0, f"public case {j} answers a hidden case of {ex.name}: {verdict.message}"


@pytest.mark.parametrize("lab", sorted({lab for lab, _ in EXERCISES}))
def test_a_kernel_is_handed_the_arguments_alone(lab):
    """What a graded kernel reads: each case's arguments, never the judge's held-out items."""
    refs = References.open(default_references(ROOT), lab, HIDDEN)
    for ex in (ex for spec in all_labs() if spec.name == lab for ex in spec.exercises):
        handed, full = casefile.load(refs.arguments_dir, ex.name), refs.cases(ex.name)
        assert len(handed) == len(full)
        assert all(len(args) == len(case) - ex.judge_only for args, case in zip(handed, full))
