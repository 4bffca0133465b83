"""What a lab's check cells record when a grader or the reference builder runs the notebook."""

from course import LAB, ROOT, solution_functions

from interplab.answers import load_cases
from interplab.checker import INPUTS_DIR_ENV, RECORD_DIR_ENV, RECORD_ONLY_ENV, Lab
from interplab.grading.course import default_references
from interplab.reference import HIDDEN, PUBLIC, References


def test_a_run_records_only_the_exercises_it_names(tmp_path, monkeypatch):
    refs = References.open(default_references(ROOT), LAB, HIDDEN)
    monkeypatch.setenv(RECORD_DIR_ENV, str(tmp_path))
    monkeypatch.setenv(INPUTS_DIR_ENV, str(refs.arguments_dir))
    monkeypatch.setenv(RECORD_ONLY_ENV, "composition_score")
    lab, fns = Lab(LAB), solution_functions()
    for exercise in ("composition_score", "prev_token_scores"):
        lab.check(exercise, fns[exercise])
        lab.record(exercise, fns[exercise])
    for inputs in (PUBLIC, HIDDEN):
        assert load_cases(tmp_path / inputs, "composition_score") is not None
        assert load_cases(tmp_path / inputs, "prev_token_scores") is None
