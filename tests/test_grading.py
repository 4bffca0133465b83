"""Grading a class of lab 02 end to end: nbgrader, the trusted runner and the references.

One class is graded once (module fixture): the solution, the untouched lab, a few known mistakes
from ``autograder/mutants`` (``END_TO_END``), a corrupt file and a notebook with deleted and retyped
cells. Each test then reads that class's CSV, gradebook and feedback. The other known mistakes are
judged in process by the grader's own code (``classes.judged_in_process``), and a test shows that
both ways give one verdict.
"""

import csv
import functools
import json
import shutil
from typing import Callable

import nbformat
import pytest
from classes import assert_costs_only_its_exercise, judged_in_process, points_of
from course import MUTANTS, ROOT, completed_lab, errors, graded_notebook, read

from interplab.exercises import LabSpec, get_lab
from interplab.grading.grade import grade
from interplab.grading.similarity import COLUMNS as SIMILARITY_COLUMNS

SPEC = get_lab("02_induction")
POINTS = points_of("02_induction")
FULL = sum(POINTS.values())
#: Mistakes graded through the whole pipeline: one whose output is NaN, one judged by properties, two whose hooks
#: run in the kernel, and the one whose feedback file is read below. The rest are judged in process.
END_TO_END = ("mask_includes_diagonal", "only_bos_excluded", "late_binding", "hooks_given_to_run_with_cache",
              "prev_main_diagonal")
#: What the lab's answer cells import beyond what ``course.solution_functions`` provides.
NAMES = {"functools": functools, "Callable": Callable}
#: What a check that judges properties says of each mistake it cannot name by its fingerprint.
PROPERTY_MESSAGES = {"no_bos": "one BOS, then the random half", "only_bos_excluded": "include special token",
                     "last_token_never_drawn": "never came up"}


def _remove(nb, grade_id):
    nb.cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") != grade_id]


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("class")
    subs = tmp / "submissions"
    subs.mkdir()
    nbformat.write(completed_lab(), str(subs / "alice.ipynb"))
    (subs / "carol").mkdir()  # the folder form: STUDENT/<notebook>.ipynb
    nbformat.write(completed_lab(), str(subs / "carol" / "induction_heads.ipynb"))
    shutil.copy(ROOT / "labs" / "02_induction" / "induction_heads.ipynb", subs / "untouched.ipynb")
    for mutant in MUTANTS:
        if mutant.name in END_TO_END:
            nbformat.write(completed_lab(mutant), str(subs / f"mutant-{mutant.name}.ipynb"))
    (subs / "corrupt.ipynb").write_text('{"cells": [ this is not json')

    damaged = completed_lab()
    _remove(damaged, "check_prev_token_scores")    # a deleted test cell comes back
    _remove(damaged, "answer_first_token_scores")  # a deleted answer comes back unanswered
    for cell in damaged.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "answer_induction_scores":
            cell.cell_type = "markdown"            # a retyped answer is turned back into code
            del cell["outputs"], cell["execution_count"]
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "check_current_token_scores":
            cell.source = 'print("✅ correct on all cases.")'  # a rewritten check is put back, and said
    nbformat.write(damaged, str(subs / "damaged.ipynb"))

    work = tmp / "work"
    out = tmp / "grades.csv"
    rows = {row.student: row for row in grade(ROOT, "02_induction", subs, out, work=work, workers=2)}
    for mutant in MUTANTS:
        rows.setdefault(f"mutant-{mutant.name}",
                        judged_in_process("02_induction", mutant, tmp_path_factory.mktemp(mutant.name), **NAMES))
    return rows, out, work


def test_the_solution_runs_without_errors_on_cpu(graded):
    """The completed lab as the grader ran it is the solution notebook: its answers, locked and hidden cells."""
    assert errors(graded_notebook(graded[2], "02_induction", "alice")) == []


def test_judging_in_process_gives_the_pipelines_verdicts(graded, tmp_path):
    for name in ("late_binding", "mask_includes_diagonal"):
        mutant = next(m for m in MUTANTS if m.name == name)
        in_process = judged_in_process("02_induction", mutant, tmp_path / name, **NAMES)
        pipeline = graded[0][f"mutant-{mutant.name}"]
        assert (in_process.points, in_process.details) == (pipeline.points, pipeline.details)


def test_the_solution_gets_full_marks_in_either_layout(graded):
    rows, _, _ = graded
    for student in ("alice", "carol"):
        assert rows[student].points == POINTS, rows[student].details
        assert rows[student].status == "graded"


def test_the_untouched_lab_gets_zero_with_a_reason(graded):
    rows, _, _ = graded
    assert rows["untouched"].total() == 0
    assert rows["untouched"].details.count("not done yet") == len(SPEC.exercises)


@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.name for m in MUTANTS])
def test_each_known_mistake_loses_marks_on_its_exercise_and_what_calls_it(graded, mutant):
    row = graded[0][f"mutant-{mutant.name}"]
    assert_costs_only_its_exercise("02_induction", row, mutant)
    assert mutant.exercise in row.details


@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.name for m in MUTANTS])
def test_each_known_mistake_is_explained(graded, mutant):
    details = graded[0][f"mutant-{mutant.name}"].details
    if SPEC.exercise(mutant.exercise).properties:  # judged by properties: the failed property is named
        assert PROPERTY_MESSAGES[mutant.name] in details
    elif mutant.name == "mask_includes_diagonal":  # the first row is fully masked: NaN
        assert "NaN" in details
    else:
        assert mutant.message in details


def test_a_corrupt_notebook_gets_a_clear_error_and_the_class_is_still_graded(graded):
    rows, _, _ = graded
    assert rows["corrupt"].status.startswith("not graded: not a readable notebook")
    assert rows["corrupt"].total() == 0
    assert rows["alice"].total() == FULL


def test_deleted_retyped_and_rewritten_cells_are_restored_and_reported(graded):
    row = graded[0]["damaged"]
    assert "restored deleted cell check_prev_token_scores" in row.status
    assert "restored deleted answer cell (left unanswered) answer_first_token_scores" in row.status
    assert "turned cell answer_induction_scores back into a code cell" in row.status
    assert "restored locked cell check_current_token_scores as released" in row.status
    assert row.points["prev_token_scores"] == POINTS["prev_token_scores"]
    assert row.points["induction_scores"] == POINTS["induction_scores"]
    assert row.points["first_token_scores"] == 0
    assert row.total() == FULL - POINTS["first_token_scores"]


def test_the_csv_has_one_row_per_student_with_points_per_exercise(graded):
    rows, out, _ = graded
    with out.open() as f:
        table = list(csv.DictReader(f))
    assert len(table) == len(rows) - (len(MUTANTS) - len(END_TO_END))  # the CSV holds the class graded end to end
    assert list(table[0]) == ["student", *POINTS, "total", "status", "details", *SIMILARITY_COLUMNS]
    alice = next(r for r in table if r["student"] == "alice")
    assert float(alice["total"]) == FULL


def test_the_csv_flags_copies_of_the_solution_and_between_classmates(graded):
    rows, out, _ = graded
    with out.open() as f:
        table = {r["student"]: r for r in csv.DictReader(f)}
    # alice and carol both hand in the published solution, word for word
    assert table["alice"]["similarity_flag"] == "solution; classmate carol"
    assert float(table["alice"]["solution_similarity"]) == 1.0
    assert table["alice"]["solution_matches"].split() == [ex.name for ex in SPEC.exercises]
    assert table["carol"]["closest_classmate"] == "alice"
    # the untouched lab has no code of its own to compare; a corrupt file is not compared
    assert table["untouched"]["similarity_flag"] == "" and table["untouched"]["solution_similarity"] == ""
    assert table["corrupt"]["similarity_flag"] == ""
    with out.with_name("grades-similarity.csv").open() as f:
        detail = list(csv.DictReader(f))
    assert {(r["student"], r["exercise"]) for r in detail} >= {("alice", ex.name) for ex in SPEC.exercises}
    assert any(r["student"] == "corrupt" and "not compared" in r["classmates_at_or_above_0.70"] for r in detail)


def test_nbgrader_keeps_the_gradebook_and_writes_feedback(graded):
    _, _, work = graded
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{work / 'gradebook.db'}") as gb:
        assert gb.find_submission("02_induction", "alice").score == FULL
        assert gb.find_submission("02_induction", "untouched").score == 0
    feedback = (work / "feedback" / "mutant-prev_main_diagonal" / "02_induction" / "induction_heads.html").read_text()
    assert "you read the main diagonal" in feedback
    verdicts = json.loads((work / "results" / "02_induction" / "alice.json").read_text())["verdicts"]
    assert set(verdicts) == {ex.name for ex in SPEC.exercises}
    assert LabSpec.test_cell_id("prev_token_scores") in {c.metadata.get("nbgrader", {}).get("grade_id")
                                                          for c in read(work / "autograded" / "alice" / "02_induction" / "induction_heads.ipynb").cells}
