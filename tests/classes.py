"""Grading a whole class of one lab, and what every graded lab's class must show.

A class is the completed lab, the untouched lab and one submission per known mistake in
``autograder/mutants/<lab>.json``. The checks here are the brief's rule for every grader: full
marks to the solution, zero to the untouched lab, fewer marks to each plausible mistake, on its
exercise (and on exercises that call it, said so), and nowhere else.

A lab whose notebook trains models takes half a minute a submission, so such a lab may send only
some of its mistakes through the whole pipeline (nbgrader, sandbox, kernel) and judge the rest
*in process*: the mutated functions run here on the grader's hidden inputs, and their answers are
recorded and judged by the grader's own code. The mistakes graded both ways must get the same verdicts.
Judged in process, a mistake reruns only the exercises whose code it changes (its own, and those that call
it, found from the functions' code, not from what the spec declares); the rest reuse the solution's answers.
"""

from __future__ import annotations

import shutil
import types
from pathlib import Path

import nbformat
import pytest
from course import ROOT, completed_lab, errors, graded_notebook, read, release_of, solution_functions, solution_of

from interplab import casefile
from interplab.answers import save_cases
from interplab.checker import run_cases
from interplab.exercises import get_lab
from interplab.grading.course import default_references
from interplab.grading.grade import Row, grade
from interplab.grading.references import Mutant, load_mutants
from interplab.grading.trusted import verdicts_for
from interplab.reference import HIDDEN, References


def points_of(lab: str) -> dict[str, float]:
    """Each exercise's points, read from the solution's graded cells."""
    return {c.metadata["nbgrader"]["grade_id"].removeprefix("check_"): float(c.metadata["nbgrader"]["points"])
            for c in read(solution_of(lab)).cells if c.metadata.get("nbgrader", {}).get("grade")}


def grade_class(lab: str, tmp: Path, mutants: list[Mutant] | None = None) -> dict[str, Row]:
    """Grade alice (the completed lab), untouched, and mutant-<name> for each of ``mutants`` (default: all)."""
    subs = tmp / "submissions"
    subs.mkdir()
    nbformat.write(completed_lab(lab=lab), str(subs / "alice.ipynb"))
    shutil.copy(release_of(lab), subs / "untouched.ipynb")
    for mutant in load_mutants(ROOT, lab) if mutants is None else mutants:
        nbformat.write(completed_lab(mutant, lab=lab), str(subs / f"mutant-{mutant.name}.ipynb"))
    rows = grade(ROOT, lab, subs, tmp / "grades.csv", work=tmp / "work", workers=2)
    return {row.student: row for row in rows}


def _names_used(code: types.CodeType) -> list[str]:
    """The global names a function's code (nested functions included) refers to."""
    return [*code.co_names, *(n for c in code.co_consts if isinstance(c, types.CodeType) for n in _names_used(c))]


def code_of(functions: dict, name: str) -> tuple:
    """The code and default arguments of ``functions[name]`` and of every function of ``functions`` it calls,
    directly or not: all that its answers depend on. Two namespaces that agree on it give the same answers (a
    mistake may change a default alone, which the code object does not hold)."""
    seen: dict[str, tuple] = {}
    todo = [name]
    while todo:
        current = todo.pop()
        fn = functions.get(current)
        if current in seen or not isinstance(fn, types.FunctionType):
            continue
        seen[current] = (fn.__code__, repr(fn.__defaults__), repr(fn.__kwdefaults__))
        todo += _names_used(fn.__code__)
    return tuple(sorted(seen.items()))


#: Hidden answers of the solution's functions, by (lab, exercise): (code_of, answers).
_SOLUTION_ANSWERS: dict[tuple[str, str], tuple[tuple, list]] = {}


def _answers(lab: str, ex, functions: dict, refs: References) -> list:
    """``ex``'s function run on the hidden cases; reused from the solution's run when its code is the solution's.

    A mistake changes one exercise's code, and every exercise whose code calls it; the answers of the rest are the
    solution's, and a lab that trains models need not train them again for every mistake.
    """
    code = code_of(functions, ex.name)
    cached = _SOLUTION_ANSWERS.get((lab, ex.name))
    if cached is not None and cached[0] == code:
        return cached[1]
    # loaded afresh, as a kernel is handed them: the judge's cached cases must not be changed in place
    # (a generator drawn from, a model or probe trained in place) by the functions run here
    return run_cases(ex, functions[ex.name], casefile.load(refs.arguments_dir, ex.name))


def judged_in_process(lab: str, mutant: Mutant | None, tmp: Path, **names) -> Row:
    """The grader's row for a submission with ``mutant`` (None: the solution), without running its notebook.

    The mutated functions (``names``: imports their cells expect) run on the default references' hidden
    cases; their answers are saved as the kernel saves them and judged by the
    grader's ``verdicts_for``. Points are what nbgrader gives a verdict: the cell's points × its score.
    """
    spec, points = get_lab(lab), points_of(lab)
    refs = References.open(default_references(ROOT), lab, HIDDEN)
    functions = solution_functions(lab, mutant, **names)
    for ex in spec.exercises:
        answers = _answers(lab, ex, functions, refs)
        if mutant is None:
            _SOLUTION_ANSWERS[(lab, ex.name)] = (code_of(functions, ex.name), answers)
        save_cases(tmp / HIDDEN, ex.name, answers)
    verdicts = verdicts_for(spec, refs, tmp, None)
    return Row(f"mutant-{mutant.name}" if mutant else "solution",
               {v.exercise: round(points[v.exercise] * v.score, 4) for v in verdicts},
               details=" | ".join(f"{v.exercise}: {v.message}" for v in verdicts if v.score < 1))


def assert_costs_only_its_exercise(lab: str, row: Row, mutant: Mutant) -> None:
    """The mistake loses marks on its exercise; callers may lose them too (and say why); nothing else does."""
    spec, points = get_lab(lab), points_of(lab)
    assert row.points[mutant.exercise] < points[mutant.exercise], row.details
    callers = {ex.name for ex in spec.exercises if mutant.exercise in ex.uses}
    for name, got in row.points.items():
        if name in callers and got < points[name]:
            assert f"calls your {mutant.exercise}" in row.details
        elif name != mutant.exercise:
            assert got == points[name], f"{mutant.name} should not cost marks on {name}: {row.details}"


class GradedClass:
    """Those checks as tests: subclass as ``TestGrading`` with ``LAB`` set; one class graded once."""

    LAB: str
    #: What a check that judges properties says of a mistake it cannot name, by mutant name.
    PROPERTY_MESSAGES: dict[str, str] = {}
    #: The mistakes graded through the whole pipeline (None: all); the rest are judged in process.
    END_TO_END: tuple[str, ...] | None = None
    #: What the lab's answer cells import, for judging in process.
    NAMES: dict[str, object] = {}

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        if "mutant" in metafunc.fixturenames:
            mutants = load_mutants(ROOT, self.LAB)
            metafunc.parametrize("mutant", mutants, ids=[m.name for m in mutants])

    @classmethod
    def _end_to_end(cls) -> list[Mutant]:
        return [m for m in load_mutants(ROOT, cls.LAB) if cls.END_TO_END is None or m.name in cls.END_TO_END]

    @pytest.fixture(scope="class")
    @classmethod
    def folder(cls, tmp_path_factory: pytest.TempPathFactory) -> Path:
        """Where the class is graded: its submissions, nbgrader's work/ and grades.csv."""
        return tmp_path_factory.mktemp("class")

    @pytest.fixture(scope="class")
    @classmethod
    def graded(cls, folder: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Row]:
        """Every student's row: from the pipeline where graded end to end, else judged in process."""
        rows = grade_class(cls.LAB, folder, cls._end_to_end())
        rows["solution"] = judged_in_process(cls.LAB, None, tmp_path_factory.mktemp("solution"), **cls.NAMES)
        for mutant in load_mutants(ROOT, cls.LAB):
            rows.setdefault(f"mutant-{mutant.name}",
                            judged_in_process(cls.LAB, mutant, tmp_path_factory.mktemp(mutant.name), **cls.NAMES))
        return rows

    def test_judging_in_process_gives_the_pipelines_verdicts(self, graded, tmp_path):
        mutant = self._end_to_end()[0]
        in_process = judged_in_process(self.LAB, mutant, tmp_path, **self.NAMES)
        pipeline = graded[f"mutant-{mutant.name}"]
        assert (in_process.points, in_process.details) == (pipeline.points, pipeline.details)

    def test_the_solution_judged_in_process_gets_full_marks(self, graded):
        """The in-process path (whose answers the mistakes reuse where their code is the solution's) is sound."""
        assert graded["solution"].points == points_of(self.LAB), graded["solution"].details

    def test_every_exercise_has_known_mistakes(self):
        names = {ex.name for ex in get_lab(self.LAB).exercises}
        assert {m.exercise for m in load_mutants(ROOT, self.LAB)} == names
        assert set(points_of(self.LAB)) == names

    def test_the_completed_lab_gets_full_marks(self, graded):
        row = graded["alice"]
        assert row.status == "graded"
        assert row.points == points_of(self.LAB), row.details

    def test_the_solution_runs_without_errors_on_cpu(self, graded, folder):
        """The completed lab as the grader ran it is the solution notebook: its answers, locked and hidden cells."""
        assert errors(graded_notebook(folder / "work", self.LAB, "alice")) == []

    def test_the_untouched_lab_gets_zero_with_a_reason(self, graded):
        row = graded["untouched"]
        assert row.total() == 0
        assert row.details.count("not done yet") == len(get_lab(self.LAB).exercises)

    def test_each_known_mistake_loses_marks_on_its_exercise_and_only_there(self, graded, mutant):
        assert_costs_only_its_exercise(self.LAB, graded[f"mutant-{mutant.name}"], mutant)

    def test_each_known_mistake_is_explained(self, graded, mutant):
        details = graded[f"mutant-{mutant.name}"].details
        assert self.PROPERTY_MESSAGES.get(mutant.name, mutant.message) in details
