"""The trusted comparison and the recorded-answer format, on small hand-made cases."""

import torch
import pytest

from interplab.answers import AnswerError, Case, as_tensor, load_cases, save_cases
from interplab.exercises import Exercise
from interplab.judge import Mistake, judge

EX = Exercise("toy", cases=lambda inputs: [], rtol=1e-4, atol=1e-6)
REFERENCE = [Case(torch.tensor([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]])), Case(torch.tensor(2.0))]


def test_answers_round_trip_values_and_errors(tmp_path):
    cases = [Case(torch.arange(6).reshape(2, 3)), Case(None, "ValueError: bad")]
    save_cases(tmp_path, "toy", cases)
    back = load_cases(tmp_path, "toy")
    assert torch.equal(back[0].value, cases[0].value) and back[1].error == "ValueError: bad"
    assert load_cases(tmp_path, "other") is None


@pytest.mark.parametrize("junk", [b"not safetensors", b"\x00" * 64, b""])
def test_a_corrupt_recording_is_rejected_not_crashing(tmp_path, junk):
    (tmp_path / "toy.safetensors").write_bytes(junk)
    with pytest.raises(AnswerError):
        load_cases(tmp_path, "toy")


def test_objects_that_lie_about_equality_are_not_recorded():
    class AlwaysEqual:
        def __eq__(self, other):
            return True

    with pytest.raises(TypeError, match="AlwaysEqual"):
        as_tensor(AlwaysEqual())
    with pytest.raises(TypeError, match="forget to `return`"):
        as_tensor(None)
    assert as_tensor(0.5).item() == 0.5 and as_tensor([1, 2]).tolist() == [1.0, 2.0]


def test_right_answers_get_full_marks():
    verdict = judge(EX, [Case(REFERENCE[0].value + 1e-7), Case(torch.tensor(2.0))], REFERENCE)
    assert verdict.score == 1.0 and verdict.passed


def test_each_wrong_case_costs_its_share_and_says_why():
    verdict = judge(EX, [Case(REFERENCE[0].value.T), Case(torch.tensor(2.0))], REFERENCE)
    assert verdict.score == 0.5
    assert "expected shape (2, 3), got (3, 2)" in verdict.message and "transposed" in verdict.message


@pytest.mark.parametrize(
    "answer, expected_words",
    [
        (Case(None, "NotImplementedError: "), "not done yet"),
        (Case(None, "IndexError: out of range (line 3)"), "raised IndexError"),
        (Case(torch.full((2, 3), float("nan"))), "NaN"),
        (Case(REFERENCE[0].value * 6), "constant factor of 6"),
        (Case(REFERENCE[0].value + 0.3), "values differ"),
    ],
)
def test_diagnoses_common_failures(answer, expected_words):
    verdict = judge(EX, [answer, REFERENCE[1]], REFERENCE)
    assert verdict.score == 0.5 and expected_words in verdict.message


def test_a_known_mistake_is_named():
    mistake = Mistake("sum", "you summed instead of averaging", [Case(REFERENCE[0].value + 1.0), REFERENCE[1]])
    verdict = judge(EX, [Case(REFERENCE[0].value + 1.0), REFERENCE[1]], REFERENCE, [mistake])
    assert "you summed instead of averaging" in verdict.message


def test_missing_or_miscounted_recordings_score_zero():
    assert judge(EX, None, REFERENCE).score == 0.0
    assert judge(EX, [REFERENCE[0]], REFERENCE).score == 0.0
