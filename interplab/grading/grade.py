"""``interplab grade``: grade every submission of a lab and write one CSV row per student.

Submissions are ``SUBMISSIONS/<student>.ipynb`` or ``SUBMISSIONS/<student>/<notebook>.ipynb``.
Each is copied into nbgrader's ``submitted/`` folder and autograded by nbgrader with the
trusted runner (``interplab.grading.trusted``); the gradebook then holds the scores, and
``nbgrader generate_feedback`` / ``nbgrader export`` work as usual. A submission that cannot
be read or graded gets a row that says why; the rest of the class is graded regardless. The CSV
also says how alike each student's answers are to the published solution's and to each
classmate's (``interplab.grading.similarity``), with the detail in ``<out>-similarity.csv``.
"""

from __future__ import annotations

import csv
import json
import multiprocessing as mp
import re
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from tqdm.auto import tqdm
from traitlets.config import Config

from interplab.exercises import LabSpec, get_lab
from interplab.grading.course import configure, workspace
from interplab.grading.repair import repair
from interplab.grading.sandbox import Limits
from interplab.grading.similarity import COLUMNS as SIMILARITY_COLUMNS
from interplab.grading.similarity import Similarity, compare_notebooks

_STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")


@dataclass
class Row:
    """One student's line of the grades CSV."""

    student: str
    points: dict[str, float] = field(default_factory=dict)
    status: str = "graded"
    details: str = ""

    def total(self) -> float:
        return round(sum(self.points.values()), 4)


def discover(submissions: Path, notebook: str) -> dict[str, Path | str]:
    """Each student's notebook, or a string saying why none could be found."""
    found: dict[str, Path | str] = {}
    for entry in sorted(Path(submissions).iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_file() and entry.suffix == ".ipynb":
            found[entry.stem] = entry
        elif entry.is_dir():
            candidates = sorted(entry.glob("*.ipynb"))
            exact = entry / f"{notebook}.ipynb"
            if exact in candidates:
                found[entry.name] = exact
            elif len(candidates) == 1:
                found[entry.name] = candidates[0]
            else:
                found[entry.name] = (f"expected one notebook ({notebook}.ipynb) in {entry.name}/, "
                                     f"found {len(candidates)}")
    return found


def read_submission(path: Path) -> nbformat.NotebookNode | str:
    """The submitted notebook, or a string saying why it is not one nbgrader can grade."""
    try:
        nb = nbformat.read(str(path), as_version=4)
        nbformat.validate(nb)
        return nb
    except Exception as exc:
        first_line = (str(exc).splitlines() or [""])[0][:200]
        return f"not a readable notebook ({exc.__class__.__name__}: {first_line})"


@dataclass(frozen=True)
class Settings:
    """Everything a grading worker needs to build its own nbgrader API."""

    root: Path
    lab: str
    work: Path
    references: Path | None = None
    feedback: bool = True
    limits: Limits = Limits()
    isolate: bool = True

    def api(self):
        from nbgrader.apps import NbGraderAPI
        from nbgrader.coursedir import CourseDirectory

        config = configure(Config(), self.root, work=self.work)
        if self.references:
            config.TrustedExecute.references = str(Path(self.references).resolve())
        config.TrustedExecute.cell_timeout = self.limits.cell_seconds
        config.TrustedExecute.notebook_timeout = self.limits.notebook_seconds
        config.TrustedExecute.memory = self.limits.memory_bytes
        config.TrustedExecute.isolate = self.isolate
        return NbGraderAPI(CourseDirectory(config=config), config=config)


def grade(
    root: Path, lab: str, submissions: Path, out: Path, references: Path | None = None, work: Path | None = None,
    feedback: bool = True, workers: int = 1, limits: Limits = Limits(), isolate: bool = True,
) -> list[Row]:
    """Grade a folder of submissions with ``workers`` processes; write ``out`` (CSV) and return its rows."""
    spec = get_lab(lab)
    settings = Settings(Path(root), lab, Path(work or workspace(root)), references, feedback, limits, isolate)
    result = settings.api().generate_assignment(lab, force=True)  # the locked cells, into the gradebook
    if not result["success"]:
        raise RuntimeError(f"nbgrader could not prepare {lab}:\n{result['error'] or result['log']}")
    students = list(discover(submissions, spec.notebook).items())
    progress = tqdm(total=len(students), desc=f"grading {lab}", unit="student")
    rows: dict[str, Row] = {}
    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"),
                             initializer=_start_worker, initargs=(settings,)) as pool:
        for row in pool.map(_grade_in_worker, students):
            rows[row.student] = row
            progress.update()
    progress.close()
    ordered = [rows[student] for student, _ in students]
    write_csv(out, spec, ordered, compare_answers(Path(root), settings.work, spec, students, Path(out)))
    return ordered


def compare_answers(root: Path, work: Path, spec: LabSpec, students: list[tuple[str, Path | str]],
                    out: Path) -> Similarity | None:
    """Every answer against the published solution's and every classmate's (``similarity``); the
    detail, one row per student and exercise, goes next to the grades (``grades-similarity.csv``).
    A failure here costs the class its similarity columns, never its grades."""
    readable = {student: path for student, path in students if isinstance(path, Path) and _STUDENT_ID.match(student)}
    try:
        report = compare_notebooks(readable, root / "solutions" / spec.name / f"{spec.notebook}.ipynb",
                                   work / "release" / spec.name / f"{spec.notebook}.ipynb",
                                   [ex.name for ex in spec.exercises])
        report.write_csv(out.with_name(f"{out.stem}-similarity.csv"))
        return report
    except Exception as exc:  # noqa: BLE001 - the grades must be written whatever went wrong here
        print(f"WARNING: answers were not compared for similarity ({exc.__class__.__name__}: {exc})", file=sys.stderr)
        return None


_WORKER: dict = {}


def _start_worker(settings: Settings) -> None:
    """Each worker has its own nbgrader API; TrustedExecute claims a free user per run."""
    spec = get_lab(settings.lab)
    release = nbformat.read(str(settings.work / "release" / settings.lab / f"{spec.notebook}.ipynb"), as_version=4)
    _WORKER.update(settings=settings, api=settings.api(), spec=spec, release=release)


def _grade_in_worker(item: tuple[str, Path | str]) -> Row:
    student, path = item
    w = _WORKER
    try:
        return _grade_one(w["api"], w["spec"], w["settings"].work, w["release"], student, path, w["settings"].feedback)
    except Exception as exc:  # one student's failure must not stop the class
        row = Row(student, {ex.name: 0.0 for ex in w["spec"].exercises})
        row.status = f"not graded: the grader failed on this submission ({exc.__class__.__name__}: {exc})"
        return row


def _grade_one(
    api, spec: LabSpec, work: Path, release: nbformat.NotebookNode, student: str, path: Path | str, feedback: bool
) -> Row:
    row = Row(student, {ex.name: 0.0 for ex in spec.exercises})
    if not _STUDENT_ID.match(student):
        row.status = "not graded: the file name is not a usable student id (letters, digits, _ . @ -)"
        return row
    submission = path if isinstance(path, str) else read_submission(path)
    if isinstance(submission, str):
        row.status = f"not graded: {submission}"
        return row
    submission, notes = repair(submission, release)
    target = work / "submitted" / student / spec.name
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    nbformat.write(submission, str(target / f"{spec.notebook}.ipynb"))
    for _ in range(5):  # workers share one SQLite gradebook: retry a write that met a lock
        result = api.autograde(spec.name, student, force=True, create=True)
        if result["success"] or "database is locked" not in (result.get("error") or ""):
            break
        time.sleep(1)
    if not result["success"]:
        error = (result.get("error") or result.get("log") or "").strip().splitlines()
        row.status = f"not graded: nbgrader failed ({error[-1] if error else 'no message'})"
        return row
    _read_grades(api, spec, student, row)
    _read_results(work, spec, student, row)
    if notes:
        row.status += "; " + "; ".join(notes)
    if feedback:
        api.generate_feedback(spec.name, student, force=True)
    return row


def _read_grades(api, spec: LabSpec, student: str, row: Row) -> None:
    """Points per exercise as nbgrader's gradebook recorded them."""
    with api.gradebook as gb:
        for ex in spec.exercises:
            grade = gb.find_grade(LabSpec.test_cell_id(ex.name), spec.notebook, spec.name, student)
            row.points[ex.name] = float(grade.score or 0.0)


def _read_results(work: Path, spec: LabSpec, student: str, row: Row) -> None:
    path = work / "results" / spec.name / f"{student}.json"
    record = json.loads(path.read_text())
    if record["problem"]:
        row.status = f"graded with a problem: {record['problem']}"
    if not record["isolated"]:
        row.status += " [NOT ISOLATED]"
    wrong = [f"{name}: {message}" for name, (score, message) in record["verdicts"].items() if score < 1]
    row.details = " | ".join(wrong)


def write_csv(out: Path, spec: LabSpec, rows: list[Row], similar: Similarity | None = None) -> None:
    names = [ex.name for ex in spec.exercises]
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["student", *names, "total", "status", "details", *SIMILARITY_COLUMNS])
        for row in rows:
            similarity = similar.columns(row.student) if similar else [""] * len(SIMILARITY_COLUMNS)
            writer.writerow([row.student, *(row.points[n] for n in names), row.total(), row.status, row.details,
                             *similarity])
