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
        (Case(REFERENCE[0].value * 6), "your answer is 6× the expected everywhere"),
        (Case(REFERENCE[0].value * 1.7), "off by a constant factor of 1.7 everywhere"),
        (Case(REFERENCE[0].value + 0.3), "off by a constant +0.3 everywhere"),
        (Case(REFERENCE[0].value + torch.tensor([[0.0, 0.0, 0.3], [0.0, 0.0, 0.0]])), "wrong at 1 of 6 entries (all too large); e.g. [0, 2] is 0.6 (expected 0.3)"),
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


# --- a known mistake that makes NaN is still named ------------------------------------------------

def _masked_softmax(scores: torch.Tensor, diagonal: int) -> torch.Tensor:
    """Causal attention: mask the entries above ``diagonal`` (0 keeps the diagonal, -1 masks it too)."""
    mask = torch.ones_like(scores, dtype=torch.bool).triu(diagonal + 1)
    return scores.masked_fill(mask, float("-inf")).softmax(-1)


SCORES = torch.randn(5, 5, generator=torch.Generator().manual_seed(0))
PATTERN = Exercise("pattern", cases=lambda inputs: [], rtol=1e-4, atol=1e-6)


def test_a_known_mistake_that_outputs_nan_is_recognised_and_named():
    """Masking the diagonal too leaves row 0 all −∞, so softmax makes it NaN: NaN where the mistake has it."""
    reference = [Case(_masked_softmax(SCORES, 0))]
    wrong = _masked_softmax(SCORES, -1)
    assert torch.isnan(wrong[0]).all() and torch.isfinite(wrong[1:]).all()
    mistake = Mistake("mask_diagonal", "mask only the future: keep the diagonal (triu(1))", [Case(wrong.clone())])
    verdict = judge(PATTERN, [Case(wrong + 1e-7 * torch.isfinite(wrong))], reference, [mistake])
    assert verdict.score == 0.0 and "keep the diagonal (triu(1))" in verdict.message


def test_nan_in_other_places_or_other_values_is_not_taken_for_the_known_mistake():
    reference = [Case(_masked_softmax(SCORES, 0))]
    wrong = _masked_softmax(SCORES, -1)
    mistake = Mistake("mask_diagonal", "mask only the future", [Case(wrong)])
    elsewhere = wrong.clone()
    elsewhere[0], elsewhere[1] = reference[0].value[0], float("nan")  # NaN in row 1, not row 0
    other_values = wrong.clone()
    other_values[2] += 0.1
    for answer in (elsewhere, other_values):
        verdict = judge(PATTERN, [Case(answer)], reference, [mistake])
        assert verdict.score == 0.0 and "mask only the future" not in verdict.message
    assert "NaN at 5 of 25 entries, all in row 1" in judge(PATTERN, [Case(elsewhere)], reference, [mistake]).message


# --- a wrong answer no known mistake explains still gets a pointer ---------------------------------

MATRIX = torch.arange(1.0, 13.0).reshape(3, 4)
FOUR = [Case(MATRIX), Case(MATRIX + 20), Case(torch.tensor(0.25)), Case(torch.arange(1.0, 7.0))]


def hint(answers: list[Case], reference: list[Case] = FOUR, **kwargs) -> str:
    return judge(EX, answers, reference, **kwargs).message


def test_the_message_says_which_cases_are_wrong():
    message = hint([FOUR[0], Case(FOUR[1].value * 2), FOUR[2], Case(FOUR[3].value.flip(0))])
    assert message.startswith("2 of 4 cases correct, wrong on cases 1, 3: ")
    assert "case 1: your answer is 2× the expected everywhere" in message and "case 3: the right values in another order" in message


def test_the_message_points_at_the_wrong_entries_and_their_pattern():
    one_row = MATRIX.clone()
    one_row[1] += torch.tensor([0.5, -0.2, 0.1, 0.3])
    message = hint([Case(one_row), *FOUR[1:]])
    assert "wrong at 4 of 12 entries, all in row 1" in message
    assert "e.g. [1, 0] is 5.5 (expected 5)" in message

    one_column = MATRIX.clone()
    one_column[:, 0] = 0
    assert "3 of 12 entries, all in column 0 (all too small)" in hint([Case(one_column), *FOUR[1:]])

    square = torch.eye(4) * 3 + 1
    diagonal = square.clone().fill_diagonal_(0.0)
    assert "all on the diagonal" in hint([Case(diagonal)], [Case(square)])
    upper = square.clone()
    upper[0, 3], upper[1, 2] = -1.0, 7.0
    assert "2 of 16 entries, all above the diagonal" in hint([Case(upper)], [Case(square)])

    vector = FOUR[3].value.clone()
    vector[2] = 9.0
    assert "wrong at entry 2 of 6 (all too large); e.g. [2] is 9 (expected 3)" in hint([*FOUR[:3], Case(vector)])


def test_the_message_names_the_shape_of_the_error():
    assert "off by a constant +0.5 everywhere" in hint([Case(MATRIX + 0.5), *FOUR[1:]])
    rows = MATRIX + torch.tensor([[1.0], [-2.0], [3.0]])
    assert "each slice along the last axis is off by its own constant" in hint([Case(rows), *FOUR[1:]])
    assert "your value 0.3 is too large, expected 0.25" in hint([*FOUR[:2], Case(torch.tensor(0.3)), FOUR[3]])
    square = torch.randn(4, 4, generator=torch.Generator().manual_seed(1))
    assert "the right numbers, transposed" in hint([Case(square.T)], [Case(square)])


@pytest.mark.parametrize(
    "got, words",
    [
        (MATRIX.reshape(2, 6), "the right numbers in another shape"),
        (MATRIX[None], "a size-1 axis too many or too few"),
        (MATRIX[:, :3], "axis 1 has 3 entries instead of 4"),
        (MATRIX.sum(0), "one axis too few"),
    ],
)
def test_a_wrong_shape_says_what_it_suggests(got, words):
    assert words in hint([Case(got), *FOUR[1:]])


def test_hidden_feedback_does_not_quote_the_reference():
    """The grader's feedback on hidden inputs says where an answer is wrong, never what the right number is."""
    off = MATRIX.clone()
    off[2, 1] = 100.0
    answers = [Case(off), FOUR[1], Case(torch.tensor(0.3)), FOUR[3]]
    shown, hidden = hint(answers), hint(answers, show_values=False)
    assert "(expected 10)" in shown and "expected 0.25" in shown
    assert "expected" not in hidden and "[2, 1] is 100" in hidden and "your value 0.3 is too large" in hidden


def test_a_whole_factor_is_named_for_the_input_size_it_equals():
    """A batch summed instead of averaged: the message says 8×, and that 8 is the batch's size."""
    inputs = [(torch.zeros(8, 5), 3)]
    summed = judge(EX, [Case(torch.tensor(47.8))], [Case(torch.tensor(5.975))], case_inputs=lambda: inputs).message
    assert "your value 47.8 is 8× the expected 5.975: 8 is the size of axis 0 of input 0 (shape (8, 5))" in summed
    assert "a sum where a mean belongs?" in summed
    averaged = judge(EX, [Case(torch.tensor(2.0))], [Case(torch.tensor(6.0))], case_inputs=lambda: inputs).message
    assert "1/3 of the expected 6: 3 is the size of input 1 (a mean where a sum belongs?)" in averaged
    no_size = judge(EX, [Case(torch.tensor(14.0))], [Case(torch.tensor(2.0))], case_inputs=lambda: inputs).message
    assert "7× the expected 2: check a mean against a sum" in no_size


def test_hidden_feedback_names_what_a_factor_equals_never_the_factor():
    """Hidden inputs: the factor would give the expected value away; the size it equals (of inputs the student
    never sees) does not."""
    inputs = [(torch.zeros(8, 5),), (torch.zeros(2, 2),)]
    message = judge(EX, [Case(torch.tensor(47.8)), Case(MATRIX * 2.5)], [Case(torch.tensor(5.975)), Case(MATRIX)],
                    case_inputs=lambda: inputs, show_values=False).message
    assert "your value 47.8 is larger than expected by a whole factor: the size of axis 0 of input 0" in message
    assert "off by a constant factor everywhere" in message
    assert "8×" not in message and "5.975" not in message and "2.5" not in message


# --- what a failed check shows in a notebook ------------------------------------------------------

def test_a_failed_check_shows_its_message_without_a_traceback_and_stops_run_all(tmp_path):
    """Run as Jupyter runs it: the error output holds the message alone (nothing from checker.py), and
    the execution fails, so Run All stops there and the next cell never runs."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.v4.new_notebook()
    nb.cells = [  # a lab whose verdict is fixed, so the kernel need not import a lab's models to reach it
        nbformat.v4.new_code_cell("from interplab.checker import Lab\nfrom interplab.judge import Verdict\n"
                                  "lab = Lab.__new__(Lab)\nlab.record_dir = None\n"
                                  "lab.verdict = lambda name, fn: Verdict(name, 0.0, 'wrong on all 2 cases: add the "
                                  "decoder bias back')"),
        nbformat.v4.new_code_cell('lab.check("decode", print)'),
        nbformat.v4.new_code_cell('print("ran after the failed check")'),
    ]
    client = NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    with pytest.raises(CellExecutionError):
        client.execute()
    [error] = nb.cells[1].outputs
    shown = "\n".join(error["traceback"])
    assert error["output_type"] == "error" and error["ename"] == "CheckFailed"
    assert "decode: wrong on all" in shown and "add the decoder bias back" in shown
    assert "checker.py" not in shown and "Traceback" not in shown and "judge.py" not in shown
    assert nb.cells[2].outputs == []
