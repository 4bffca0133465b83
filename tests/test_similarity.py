"""Similarity to the published solution and between classmates (``interplab.grading.similarity``).

- Copies are found: every disguise of every solution answer (renamed, reformatted, commented,
  docstrings, type hints stripped or added, independent statements swapped, all at once) scores
  1.0, and copies that carry one known mistake with their variables renamed are flagged.
- Honest work is not: every answer in ``tests/independent/`` passes the lab's public check, and
  the ones flagged at the module's thresholds are exactly those ``benchmarks/similarity.py``
  reports (answers whose instructions spell out the code); no two of them match each other.
- Untouched stubs and one-line answers get no score, so they never match.
- A class compared in memory gets the columns and the detailed CSV an instructor reads.
- Hostile notebooks (not JSON, wrong types, huge or deeply nested cells) cost nothing but a note.
"""

from __future__ import annotations

import csv
import json
from functools import cache

import pytest
import torch
from course import ROOT, release_of, solution_of, strip_markers
from disguise import DISGUISES, rename
from independent import Answer, answers, function_of, labs, notebook_namespace

from interplab.checker import Lab
from interplab.exercises import all_labs, get_lab
from interplab.grading import similarity as S
from interplab.grading.references import load_mutants

ALL_ANSWERS = answers()

#: What benchmarks/similarity.py reports at the module's constants (K=5, MIN_GRAMS=12, THRESHOLD=0.7):
#: of 159 independent answers, 134 long enough to judge, these 4 (3.0 %) reach the threshold against
#: the solution. Each is an answer whose instructions dictate its code: a one-line formula whose
#: only natural spelling is the solution's, and loops the instructions list step by step.
FLAGGED_AGAINST_THE_SOLUTION = {
    "02_induction/composition_score/following_the_hint",  # ((W_A @ W_B).norm() / (...)).item(): one way to write it
    "03_superposition/train_toy_models/plain_loop",  # the instructions list the loop's five steps
    "03_superposition/train_toy_models/inline_forward",  # the same loop, with the forward pass inlined
    "04_sae/sae_loss/following_the_hint",  # the hint spells out both terms and the condition
}
JUDGED_AGAINST_THE_SOLUTION = 134


@cache
def _json(path) -> dict:
    return json.loads(path.read_text())


@cache
def _solution(lab: str) -> dict[str, str]:
    return {ex: strip_markers(src) for ex, src in S.answer_cells(_json(solution_of(lab))).items()}


@cache
def _given(lab: str) -> dict[str, frozenset]:
    return S.given_grams(_json(release_of(lab)))


def _score(lab: str, exercise: str, a: str, b: str) -> float | None:
    given = _given(lab)[exercise]
    return S.similarity(S.fingerprint(a, given), S.fingerprint(b, given))


# --- copies are found -------------------------------------------------------------------------------


@pytest.mark.parametrize("lab", [spec.name for spec in all_labs()])
def test_every_disguise_of_the_solution_scores_one(lab):
    judged = 0
    for ex in get_lab(lab).exercises:
        solution = _solution(lab)[ex.name]
        for name, disguise in DISGUISES.items():
            score = _score(lab, ex.name, solution, disguise(solution))
            if score is not None:
                assert score == 1.0, f"{ex.name}, {name}: {score}"
                judged += 1
    assert judged, "no answer of this lab is long enough to judge: copying it cannot be detected"


def test_the_normalised_tokens_ignore_names_layout_comments_hints_and_order():
    a = '''
def f(x: Tensor, y: Tensor) -> Tensor:
    """Docstring."""
    total: Tensor = x.sum(dim=0)   # the sum
    scale = y.norm()
    return torch.relu(total / scale)
'''
    b = '''
def f(a, b):
    # a different student
    s = b.norm()
    t = (
        a.sum(dim = 0)
    )
    return torch.relu(t / s)
'''
    assert S.normalise(a) == S.normalise(b)
    assert "torch" in S.normalise(a) and "relu" in S.normalise(a)  # what the code does stays
    assert S.normalise("x = q.softmax(-1)") != S.normalise("x = q.log_softmax(-1)")


def test_copies_with_a_known_mistake_and_renamed_variables_are_flagged():
    """Over every lab: a copy of the solution with one known mistake added and every name changed."""
    caught, judged, missed = 0, 0, []
    for spec in all_labs():
        for mutant in load_mutants(ROOT, spec.name):
            solution = _solution(spec.name)[mutant.exercise]
            if mutant.find not in solution:
                continue
            score = _score(spec.name, mutant.exercise, solution,
                           rename(solution.replace(mutant.find, mutant.replace), seed=3))
            if score is not None:
                judged += 1
                caught += score >= S.THRESHOLD
                missed += [] if score >= S.THRESHOLD else [f"{spec.name}/{mutant.name}: {score:.2f}"]
    # 139 of the 146 judged in labs 01-06. The seven missed (0.58 to 0.69) are mistakes that replace
    # a large part of a short answer, so what remains is less the solution's code.
    assert judged and caught >= 0.9 * judged, f"{caught} of {judged}; missed: {missed}"


# --- honest work is not -------------------------------------------------------------------------------


@cache
def _namespace(lab: str) -> dict:
    return notebook_namespace(lab)


def _solution_averages_over_heads() -> bool:
    """Issue 8: lab 02's solution of first_token_scores returns [layer, query - 1], not [layer, head]."""
    fn = _namespace("02_induction")["first_token_scores"]
    return tuple(fn(torch.rand(2, 3, 5, 7, 7)).shape) != (2, 5)


@pytest.mark.parametrize("answer", ALL_ANSWERS, ids=[a.id for a in ALL_ANSWERS])
def test_each_independent_answer_passes_the_labs_check(answer: Answer):
    if answer.exercise == "first_token_scores" and _solution_averages_over_heads():
        pytest.xfail("issue 8: the references expect [layer, query - 1]; these answers follow the instructions")
    verdict = Lab(answer.lab).verdict(answer.exercise, function_of(answer, _namespace(answer.lab)))
    assert verdict.passed, verdict.message


@pytest.mark.parametrize("lab", labs())
def test_every_graded_exercise_has_three_independent_answers(lab):
    counts = {ex.name: sum(1 for a in ALL_ANSWERS if (a.lab, a.exercise) == (lab, ex.name))
              for ex in get_lab(lab).exercises}
    assert min(counts.values()) >= 3, counts


def test_independent_answers_flagged_against_the_solution_are_the_reported_ones():
    scores = {a.id: _score(a.lab, a.exercise, _solution(a.lab)[a.exercise], a.source) for a in ALL_ANSWERS}
    judged = [i for i, s in scores.items() if s is not None]
    flagged = {i for i in judged if scores[i] >= S.THRESHOLD}
    assert flagged == FLAGGED_AGAINST_THE_SOLUTION
    assert len(judged) == JUDGED_AGAINST_THE_SOLUTION
    assert len(flagged) / len(judged) <= 0.05


def test_independent_answers_never_match_each_other():
    by_exercise: dict[tuple[str, str], list[Answer]] = {}
    for a in ALL_ANSWERS:
        by_exercise.setdefault((a.lab, a.exercise), []).append(a)
    pairs = matched = 0
    for (lab, ex), written in by_exercise.items():
        for i, a in enumerate(written):
            for b in written[i + 1:]:
                score = _score(lab, ex, a.source, b.source)
                pairs += score is not None
                matched += score is not None and score >= S.THRESHOLD
    assert pairs >= 150 and matched == 0


def test_no_honest_student_is_flagged_but_copiers_are():
    """A whole lab per student: one independent answer per exercise, in every combination of styles
    the corpus allows cyclically, against students who copied the whole lab or half of it."""
    for lab in labs():
        exercises = [ex.name for ex in get_lab(lab).exercises]
        pool = {ex: [a.source for a in ALL_ANSWERS if (a.lab, a.exercise) == (lab, ex)] for ex in exercises}
        students = {f"honest{i}": {ex: pool[ex][(i + j) % len(pool[ex])] for j, ex in enumerate(exercises)}
                    for i in range(4)}
        students["copier"] = {ex: DISGUISES["everything"](_solution(lab)[ex]) for ex in exercises}
        students["half"] = {ex: _solution(lab)[ex] if j % 2 else pool[ex][0] for j, ex in enumerate(exercises)}
        report = S.compare(students, _solution(lab), exercises, _given(lab))
        for i in range(4):
            assert "solution" not in report.students[f"honest{i}"].flag, (lab, report.students[f"honest{i}"])
        assert report.students["copier"].flag.startswith("solution")
        assert report.students["copier"].solution_mean == 1.0
        assert "solution" in report.students["half"].flag


# --- stubs and one-liners ------------------------------------------------------------------------------


def test_the_untouched_stub_has_no_code_of_its_own():
    release = S.answer_cells(_json(release_of("02_induction")))
    for ex, stub in release.items():
        if ex in _given("02_induction"):
            assert S.fingerprint(stub, _given("02_induction")[ex]) == frozenset()


def test_untouched_and_one_line_answers_never_match():
    stubs = S.answer_cells(_json(release_of("04_sae")))
    exercises = ["decode", "train_sae"]
    one_liner = "def decode(sae, z):\n    return z @ sae.W_dec + sae.b_dec\n"
    class_ = {"dora": dict(stubs), "eli": dict(stubs), "fay": {"decode": one_liner}, "gus": {"decode": one_liner}}
    report = S.compare(class_, _solution("04_sae"), exercises, _given("04_sae"))
    for row in report.answers:
        assert row.solution is None and row.classmate_score is None and row.matches == (), row
    for student in class_:
        assert report.students[student].flag == ""
        assert report.columns(student)[1] == ""  # no mean similarity: nothing could be judged


# --- a class, as the instructor sees it ----------------------------------------------------------------


def test_a_class_gets_columns_and_a_detailed_csv(tmp_path):
    lab = "02_induction"
    exercises = [ex.name for ex in get_lab(lab).exercises]
    pool = {ex: [a.source for a in ALL_ANSWERS if (a.lab, a.exercise) == (lab, ex)] for ex in exercises}
    solution = _solution(lab)
    alice = {ex: DISGUISES["everything"](solution[ex]) for ex in exercises}  # copied the published solution
    carol = {ex: pool[ex][0] for ex in exercises}  # honest
    bob = {ex: rename(source, seed=7) for ex, source in carol.items()}  # copied carol
    untouched = S.answer_cells(_json(release_of(lab)))
    report = S.compare({"alice": alice, "bob": bob, "carol": carol, "dan": untouched}, solution, exercises,
                       _given(lab), unread={"erin": "not a readable notebook (JSONDecodeError)"})

    assert report.students["alice"].flag == "solution"
    assert report.students["bob"].flag == "classmate carol" and report.students["carol"].flag == "classmate bob"
    assert report.students["bob"].classmate_mean == 1.0
    assert report.students["dan"].flag == "" and report.students["dan"].solution_mean is None
    assert len(report.columns("alice")) == len(S.COLUMNS)
    assert report.columns("erin") == [""] * len(S.COLUMNS)  # not read: blank, and said so in the detail

    out = tmp_path / "grades-similarity.csv"
    report.write_csv(out)
    with out.open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4 * len(exercises) + 1
    attention = next(r for r in rows if (r["student"], r["exercise"]) == ("bob", "attention_pattern"))
    assert attention["closest_classmate"] == "carol" and float(attention["classmate_similarity"]) == 1.0
    assert "not compared: not a readable notebook" in rows[-1][f"classmates_at_or_above_{S.THRESHOLD:.2f}"]


def test_compare_notebooks_reads_files_and_notes_what_it_cannot(tmp_path, monkeypatch):
    lab = "04_sae"
    good = _json(solution_of(lab))
    (tmp_path / "copier.ipynb").write_text(json.dumps(good))
    (tmp_path / "garbage.ipynb").write_text("{ not json")
    (tmp_path / "list.ipynb").write_text("[1, 2, 3]")
    weird = {"cells": [{"cell_type": "code", "source": 42, "metadata": {"nbgrader": "x"}},
                       {"cell_type": "code", "source": ["def decode(sae, z):\n", 7, "    return z\n"], "metadata": []},
                       "not a cell"]}
    (tmp_path / "weird.ipynb").write_text(json.dumps(weird))
    big = tmp_path / "big.ipynb"
    big.write_text(json.dumps(good) + " " * 2048)
    monkeypatch.setattr(S, "MAX_NOTEBOOK_BYTES", big.stat().st_size - 1)
    submissions = {p.stem: p for p in sorted(tmp_path.glob("*.ipynb"))}
    exercises = [ex.name for ex in get_lab(lab).exercises]
    report = S.compare_notebooks(submissions, solution_of(lab), release_of(lab), exercises)
    assert set(report.unread) == {"garbage", "big"}
    assert "over the" in report.unread["big"]
    assert report.students["copier"].flag == "solution"
    assert report.students["list"].solution_mean is None and report.students["weird"].flag == ""


def test_hostile_cells_are_cut_or_fall_back_to_plain_tokens():
    deep = "def f(x):\n    return " + "(" * 5000 + "x" + ")" * 5000
    assert S.normalise(deep)  # too deep for the parser: plain tokens instead
    huge = "def f(x):\n" + "    x = x + 1\n" * 100_000
    assert len(S.normalise(huge)) < S.MAX_SOURCE_CHARS  # only the first MAX_SOURCE_CHARS are read
    assert S.normalise("%timeit f(x)\ny = f(x)") == S.normalise("y = f(x)")  # magics are not code
    assert S.normalise("def broken(:\n  return 1") == ["def", "_", "(", ":", "return", "1"]
    assert S.answer_cells({"cells": None}) == {} and S.answer_cells([]) == {}


def test_grading_writes_its_csv_even_when_answers_cannot_be_compared(tmp_path, capsys):
    from interplab.grading.grade import Row, compare_answers, write_csv

    spec = get_lab("02_induction")
    notebook = tmp_path / "alice.ipynb"
    notebook.write_text(json.dumps(_json(solution_of("02_induction"))))
    # no solutions/ or release under tmp_path: the comparison fails, and says so
    assert compare_answers(tmp_path, tmp_path, spec, [("alice", notebook)], tmp_path / "grades.csv") is None
    assert "not compared for similarity" in capsys.readouterr().err
    write_csv(tmp_path / "grades.csv", spec, [Row("alice", {ex.name: 1.0 for ex in spec.exercises})], None)
    with (tmp_path / "grades.csv").open() as f:
        (row,) = csv.DictReader(f)
    assert row["total"] == str(float(len(spec.exercises))) and row["similarity_flag"] == ""
