"""``interplab grade``: grade every submission of a lab and write one CSV row per student.

Submissions are ``SUBMISSIONS/<student>.ipynb``, ``SUBMISSIONS/<student>/<notebook>.ipynb`` or, as
``nbgrader collect`` leaves them, ``SUBMISSIONS/<student>/<lab>/<notebook>.ipynb`` (whose ``timestamp.txt``
comes along, so the gradebook knows a late submission; docs/hub.md). Each is copied into nbgrader's
``submitted/`` folder and autograded by nbgrader with the trusted runner (``interplab.grading.trusted``);
the gradebook then holds the scores, and ``nbgrader generate_feedback`` / ``nbgrader export`` work as
usual. A submission that cannot be read or graded gets a row that says why; the rest of the class
is graded regardless: a grading worker that dies (killed, or chosen by the out-of-memory killer) is replaced and its
students graded again, and the CSV is written whatever happens, one plain line per cell. The CSV
also says how alike each student's answers are to the published solution's and to each
classmate's (``interplab.grading.similarity``), with the detail in ``<out>-similarity.csv``.
"""

from __future__ import annotations

import collections
import csv
import dataclasses
import json
import multiprocessing as mp
import os
import re
import shutil
import sys
import time
import warnings
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import nbformat
from tqdm.auto import tqdm
from traitlets.config import Config

from interplab.exercises import LabSpec, get_lab
from interplab.grading.course import configure, default_references, workspace
from interplab.grading.execute import plain
from interplab.grading.repair import repair
from interplab.grading.sandbox import Limits
from interplab.grading.similarity import COLUMNS as SIMILARITY_COLUMNS
from interplab.grading.similarity import Similarity, compare_notebooks

_STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
#: The most characters a status or the details of one row may hold in the CSV.
MAX_STATUS_CHARS = 500
MAX_DETAILS_CHARS = 4000
#: Control characters (NUL, line breaks, escape sequences): a CSV cell holds one plain line.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def cell_text(text: str, limit: int) -> str:
    """``text`` as one plain CSV cell: no control characters, at most ``limit`` characters, and
    never read as a formula by a spreadsheet."""
    text = _CONTROL.sub(" ", str(text)).strip()
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


@dataclass
class Row:
    """One student's line of the grades CSV."""

    student: str
    points: dict[str, float] = field(default_factory=dict)
    status: str = "graded"
    details: str = ""

    def total(self) -> float:
        return round(sum(self.points.values()), 4)

    def plain(self) -> Row:
        """This row as the CSV holds it: status and details cleaned and bounded."""
        return Row(self.student, dict(self.points), cell_text(self.status, MAX_STATUS_CHARS),
                   cell_text(self.details, MAX_DETAILS_CHARS))


def discover(submissions: Path, notebook: str) -> dict[str, Path | str]:
    """Each student's notebook, or a string saying why none could be found: ``<student>.ipynb``,
    ``<student>/<notebook>.ipynb`` or ``<student>/<lab>/<notebook>.ipynb`` (``nbgrader collect``'s)."""
    found: dict[str, Path | str] = {}
    for entry in sorted(Path(submissions).iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_file() and entry.suffix == ".ipynb":
            found[entry.stem] = entry
        elif entry.is_dir():
            folder = _student_folder(entry, notebook)
            candidates = sorted(folder.glob("*.ipynb"))
            exact = folder / f"{notebook}.ipynb"
            if exact in candidates:
                found[entry.name] = exact
            elif len(candidates) == 1:
                found[entry.name] = candidates[0]
            else:
                found[entry.name] = (f"expected one notebook ({notebook}.ipynb) in {entry.name}/ (or, as nbgrader "
                                     f"collect leaves it, in {entry.name}/<lab>/), found {len(candidates)}")
    return found


def _student_folder(entry: Path, notebook: str) -> Path:
    """The folder of a student's notebook: their own folder, or, as ``nbgrader collect`` leaves it
    (``<student>/<lab>/<notebook>.ipynb`` beside ``timestamp.txt``), the one folder in it that holds this
    lab's notebook. Each lab's notebook has its own name, so a student's other labs are never taken for it."""
    if any(entry.glob("*.ipynb")):
        return entry
    labs = [sub for sub in sorted(entry.iterdir()) if (sub / f"{notebook}.ipynb").is_file()]
    return labs[0] if len(labs) == 1 else entry


#: What nbgrader's exchange keeps beside a submitted notebook, and reads back after grading: when it was
#: submitted (late or not, against the assignment's due date) and the secret that names its feedback file
#: (without it, ``nbgrader release_feedback`` cannot release the student's feedback).
EXCHANGE_FILES = ("timestamp.txt", "submission_secret.txt")


def exchange_files(notebook: Path, student: str, lab: str) -> tuple[dict[str, str], list[str]]:
    """nbgrader's files (``EXCHANGE_FILES``) that came with ``student``'s notebook, and a note for each left out.

    Only from the student's own folder (``<student>/`` or ``<student>/<lab>/``): one beside
    ``SUBMISSIONS/<student>.ipynb`` would be the whole class's. Each is a little text, read without following
    a link; a timestamp that nbgrader cannot read would stop it grading the student, so it is left out.
    """
    from nbgrader.utils import parse_utc

    folder = notebook.parent
    if not (folder.name == student or (folder.name == lab and folder.parent.name == student)):
        return {}, []
    found: dict[str, str] = {}
    notes: list[str] = []
    for name in EXCHANGE_FILES:
        if not os.path.lexists(folder / name):
            continue
        try:
            fd = os.open(folder / name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
            with os.fdopen(fd, "rb") as f:
                text = f.read(1000).decode()
            if name == "timestamp.txt":
                parse_utc(text.strip())
        except (OSError, ValueError, OverflowError) as exc:  # a bad encoding or timestamp is a ValueError
            consequence = ("it counts as on time" if name == "timestamp.txt"
                           else "its feedback cannot be released through nbgrader's exchange")
            notes.append(f"ignored the submission's unreadable {name} ({exc.__class__.__name__}): {consequence}")
            continue
        found[name] = text
    return found, notes


def read_submission(path: Path, max_bytes: int = Limits.submission_bytes) -> nbformat.NotebookNode | str:
    """The submitted notebook, or a string saying why it is not one nbgrader can grade.

    Its size is checked before it is read, and its outputs are dropped before it is validated:
    nbgrader clears them anyway, and validating a million of them took minutes and gigabytes.
    """
    try:
        size = path.stat().st_size
        if size > max_bytes:
            return (f"the notebook is {size / 1e6:.0f} MB, over the {max_bytes / 1e6:.0f} MB limit "
                    "(clear its outputs and save it again)")
        data = json.loads(path.read_bytes())
        for cell in data.get("cells", []) if isinstance(data, dict) else []:
            if isinstance(cell, dict) and isinstance(cell.get("outputs"), list):
                cell["outputs"] = []
        nb = nbformat.reads(json.dumps(data), as_version=4)
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
    #: A Dask scheduler's address: each submission's sandboxed run is a task there (``interplab.grading.cluster``).
    cluster: str | None = None

    def api(self):
        from nbgrader.apps import NbGraderAPI
        from nbgrader.coursedir import CourseDirectory

        config = configure(Config(), self.root, work=self.work)
        if self.references:
            config.TrustedExecute.references = str(Path(self.references).resolve())
        config.TrustedExecute.cell_timeout = self.limits.cell_seconds
        config.TrustedExecute.notebook_timeout = self.limits.notebook_seconds
        config.TrustedExecute.memory = self.limits.memory_bytes
        config.TrustedExecute.limits = dataclasses.asdict(self.limits)
        config.TrustedExecute.isolate = self.isolate
        if self.cluster:
            config.TrustedExecute.cluster = self.cluster
        return NbGraderAPI(CourseDirectory(config=config), config=config)


def grade(
    root: Path, lab: str, submissions: Path, out: Path, references: Path | None = None, work: Path | None = None,
    feedback: bool = True, workers: int = 1, limits: Limits = Limits(), isolate: bool = True,
    cluster: str | None = None,
) -> list[Row]:
    """Grade a folder of submissions with ``workers`` processes; write ``out`` (CSV) and return its rows.

    With ``cluster`` (a Dask scheduler's address, or ``local:N``) the submissions run on its workers
    (``interplab.grading.cluster``) and this machine keeps at least one process per worker thread busy
    judging them; the gradebook and the CSV stay here. The CSV is written even if grading stops
    halfway (Ctrl-C, an error): the students not graded yet are in it, marked so.
    """
    spec = get_lab(lab)
    settings = Settings(Path(root), lab, Path(work or workspace(root)), references, feedback, limits, isolate)
    with warnings.catch_warnings():
        _quiet()
        result = settings.api().generate_assignment(lab, force=True)  # the locked cells, into the gradebook
    if not result["success"]:
        raise RuntimeError(f"nbgrader could not prepare {lab}:\n{result['error'] or result['log']}")
    students = list(discover(submissions, spec.notebook).items())
    remote = None
    if cluster:  # reached (or started) before anything is graded: a cluster that cannot grade stops here
        from interplab.grading.cluster import connect
        from interplab.reference import HIDDEN, References

        refs = References.open(Path(references or default_references(root)), lab, HIDDEN)
        remote = connect(cluster, refs.arguments_dir, limits, isolate)
        settings, workers = dataclasses.replace(settings, cluster=remote.address), max(workers, remote.threads)
    progress = tqdm(total=len(students), desc=f"grading {lab}", unit="student")
    rows: dict[str, Row] = {}
    try:
        for row in schedule(settings, students, workers):
            rows[row.student] = row.plain()
            progress.update()
    finally:
        progress.close()
        if remote is not None:
            remote.close()
        zero = {ex.name: 0.0 for ex in spec.exercises}
        ordered = [rows.get(student) or Row(student, dict(zero), "not graded: grading stopped before this submission")
                   for student, _ in students]
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


#: A worker that died grading a submission alone marks it; with others, all of them are retried.
DIED = ("not graded: the grading process died while grading this submission, twice (it was killed, "
        "or ran the machine out of memory); grade it again on its own to see why")


def schedule(settings: Settings, students: list[tuple[str, Path | str]], workers: int) -> Iterator[Row]:
    """Each student's row, as workers finish them; survives workers that die.

    A dead worker breaks its whole pool (``BrokenProcessPool`` for every submission in it), so
    at most ``workers`` submissions are handed out at a time: those are the ones to retry, in a
    fresh pool. Each is then graded *alone*, so a second death names the submission that causes it.
    """
    queue = collections.deque(students)
    suspects: set[str] = set()  # in a pool when it broke: graded alone from now on
    pool: ProcessPoolExecutor | None = None
    running: dict[Future, tuple[str, Path | str]] = {}
    try:
        while queue or running:
            if pool is None:
                pool = ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"),
                                           initializer=_start_worker, initargs=(settings,))
            lost = []
            while queue and len(running) < workers:
                alone = queue[0][0] in suspects or any(s in suspects for s, _ in running.values())
                if alone and running:
                    break
                item = queue.popleft()
                try:
                    running[pool.submit(_grade_in_worker, item)] = item
                except BrokenProcessPool:
                    lost.append(item)
                    break
                if alone:
                    break
            done, _ = wait(running, return_when=FIRST_COMPLETED) if running and not lost else (set(), set())
            for future in done:
                item = running.pop(future)
                try:
                    yield future.result()
                except BrokenProcessPool as exc:
                    if "initializer" in str(exc):
                        raise RuntimeError("the grading workers could not start (see the message above)") from exc
                    lost.append(item)
            if not lost:
                continue
            lost += running.values()  # the pool's other workers are gone too
            running.clear()
            pool.shutdown(wait=False, cancel_futures=True)
            pool = None
            for student, path in reversed(lost):
                if student in suspects and len(lost) == 1:
                    yield _zero_row(settings, student, DIED)
                else:
                    suspects.add(student)
                    queue.appendleft((student, path))
    finally:
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)


def _zero_row(settings: Settings, student: str, status: str) -> Row:
    return Row(student, {ex.name: 0.0 for ex in get_lab(settings.lab).exercises}, status)


def _quiet() -> None:
    """nbgrader's SQLAlchemy use warns three times per student, and nbformat when it renumbers a
    submission's duplicate or missing cell ids (which ``repair`` handles): neither is the
    instructor's concern."""
    from nbformat.warnings import DuplicateCellId, MissingIDFieldWarning
    from sqlalchemy.exc import SAWarning

    for category in (SAWarning, DuplicateCellId, MissingIDFieldWarning):
        warnings.filterwarnings("ignore", category=category)


_WORKER: dict = {}


def _start_worker(settings: Settings) -> None:
    """Each worker has its own nbgrader API; TrustedExecute claims a free user per run."""
    _quiet()
    spec = get_lab(settings.lab)
    release = nbformat.read(str(settings.work / "release" / settings.lab / f"{spec.notebook}.ipynb"), as_version=4)
    _WORKER.update(settings=settings, api=settings.api(), spec=spec, release=release)


def _grade_in_worker(item: tuple[str, Path | str]) -> Row:
    student, path = item
    w = _WORKER
    try:
        return _grade_one(w["api"], w["spec"], w["settings"], w["release"], student, path)
    except Exception as exc:  # one student's failure must not stop the class
        row = Row(student, {ex.name: 0.0 for ex in w["spec"].exercises})
        row.status = f"not graded: the grader failed on this submission ({exc.__class__.__name__}: {exc})"
        return row


def _grade_one(
    api, spec: LabSpec, settings: Settings, release: nbformat.NotebookNode, student: str, path: Path | str
) -> Row:
    work, feedback = settings.work, settings.feedback
    row = Row(student, {ex.name: 0.0 for ex in spec.exercises})
    if not _STUDENT_ID.match(student):
        row.status = "not graded: the file name is not a usable student id (letters, digits, _ . @ -)"
        return row
    submission = path if isinstance(path, str) else read_submission(path, settings.limits.submission_bytes)
    if isinstance(submission, str):
        row.status = f"not graded: {submission}"
        return row
    submission, notes = repair(submission, release)
    kept, left_out = exchange_files(path, student, spec.name) if isinstance(path, Path) else ({}, [])
    notes += left_out
    target = work / "submitted" / student / spec.name
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    nbformat.write(submission, str(target / f"{spec.notebook}.ipynb"))
    for name, text in kept.items():  # nbgrader's autograde and release_feedback read them here
        (target / name).write_text(text)
    for _ in range(5):  # workers share one SQLite gradebook: retry a write that met a lock
        result = api.autograde(spec.name, student, force=True, create=True)
        if result["success"] or "database is locked" not in (result.get("error") or ""):
            break
        time.sleep(1)
    if not result["success"]:
        row.status = f"not graded: nbgrader failed ({plain(result.get('error') or result.get('log') or '')})"
        return row
    _read_grades(api, spec, student, row)
    _read_results(work, spec, student, row)
    notes += _lateness(api, spec, student)
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


def _lateness(api, spec: LabSpec, student: str) -> list[str]:
    """A note when the gradebook has the submission late: its timestamp.txt (nbgrader's exchange writes it)
    after the lab's due date (``nbgrader db assignment add LAB --duedate=...``); any penalty is nbgrader's."""
    with api.gradebook as gb:
        late = gb.find_submission(spec.name, student).total_seconds_late
    return [f"submitted late, {timedelta(seconds=round(late))} (h:mm:ss) after the due date"] if late > 0 else []


def _read_results(work: Path, spec: LabSpec, student: str, row: Row) -> None:
    path = work / "results" / spec.name / f"{student}.json"
    record = json.loads(path.read_text())
    if record["problem"]:
        row.status = f"graded with a problem: {record['problem']}"
    if not record["isolated"]:
        row.status += " [NOT ISOLATED]"
    wrong = [f"{name}: {message}" for name, (score, message) in record["verdicts"].items() if score < 1]
    row.details = " | ".join(wrong)


def summary(rows: list[Row], width: int = 160) -> str:
    """What the console shows after grading: the counts, then one line per student whose row needs a look."""
    problems = [r for r in rows if r.status != "graded" and not r.status.startswith("not graded")]
    failed = [r for r in rows if r.status.startswith("not graded")]
    lines = [f"graded {len(rows) - len(problems) - len(failed)}, graded with problems {len(problems)}, "
             f"not graded {len(failed)}"]
    for row in problems + failed:
        line = f"  {row.student}: {row.total():g} points, {row.status}"
        lines.append(line if len(line) <= width else line[: width - 1] + "…")
    return "\n".join(lines)


def write_csv(out: Path, spec: LabSpec, rows: list[Row], similar: Similarity | None = None) -> None:
    """One row per student, every text cell plain and bounded (``Row.plain``); written whole to
    a temporary file first, so a crash never leaves half a CSV where the last one was."""
    names = [ex.name for ex in spec.exercises]
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    with tmp.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["student", *names, "total", "status", "details", *SIMILARITY_COLUMNS])
        for row in rows:
            row = row.plain()
            similarity = similar.columns(row.student) if similar else [""] * len(SIMILARITY_COLUMNS)
            writer.writerow([row.student, *(row.points[n] for n in names), row.total(), row.status, row.details,
                             *(cell_text(value, MAX_DETAILS_CHARS) for value in similarity)])
    tmp.replace(out)
