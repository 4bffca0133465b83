"""nbgrader's autograde step, with the verdicts reached outside the student's kernel.

Stock nbgrader runs the hidden tests in the student's kernel, so a student who redefines
``assert_close`` passes them. Here the ``Execute`` preprocessor of ``nbgrader autograde`` is
replaced by ``TrustedExecute``:

1. run the submission (nbgrader has already restored the locked cells, hidden tests included)
   in a child process that only *records* the answers of each exercise on the hidden cases,
   which are handed to it as data (the seed that made them never enters the sandbox);
2. compare the recordings with the reference outputs here, in the grader's process;
3. write each verdict into its test cell as the output nbgrader scores: a number for partial
   credit, an error for none, so nbgrader's gradebook, feedback and export work as usual.

Step 1 is one function of plain data, ``run_sandboxed``: the notebook, the hidden cases' files
and the limits go in; the executed notebook, the recorded answers (``Recording``) and how the
run went come out. It runs here, or on a Dask worker of another machine
(``interplab.grading.cluster``), which prepares its own private folder and claims its own user
there. Nothing it is given is more than the sandboxed kernel receives anyway: never the seed,
the expected outputs, the known mistakes or the judge's held-out data, which stay here with
steps 2 and 3.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbformat.v4 import new_output
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Bool, Dict, Int, Unicode

from interplab.answers import MAX_ANSWER_BYTES, AnswerError, Case, load_cases
from interplab.checker import INPUTS_DIR_ENV, RECORD_DIR_ENV, RECORD_INPUTS_ENV
from interplab.exercises import LabSpec, get_lab
from interplab.grading.execute import run_notebook
from interplab.grading.sanitize import clean_cells, clean_output
from interplab.grading.sandbox import FIRST_UID, Limits, Sandbox, claim_uid, kill_user
from interplab.judge import COPIED, STRONG, Verdict, copy_evidence, judge, nameable_mistakes
from interplab.reference import HIDDEN, PACKAGE_REFERENCES, PUBLIC, MissingReferences, References


def grade_ids(nb: nbformat.NotebookNode) -> dict[str, int]:
    """Map each nbgrader grade_id in a notebook to its cell index."""
    ids = {}
    for i, cell in enumerate(nb.cells):
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if grade_id:
            ids[grade_id] = i
    return ids


def verdicts_for(spec: LabSpec, refs: References, record_dir: Path, problem: str | None) -> list[Verdict]:
    """Judge every exercise of a lab from what a run recorded in ``record_dir``."""
    answers: dict[str, list[Case] | None | AnswerError] = {}
    for ex in spec.exercises:
        try:
            answers[ex.name] = load_cases(record_dir / HIDDEN, ex.name)
        except AnswerError as exc:
            answers[ex.name] = exc
    copied = _copies_of_public(spec, refs, answers)
    verdicts = []
    for ex in spec.exercises:
        answer = answers[ex.name]
        if isinstance(answer, AnswerError):
            verdicts.append(Verdict(ex.name, 0.0, f"the recorded answer was rejected: {answer}"))
            continue
        if ex.name in copied:
            verdicts.append(Verdict(ex.name, 0.0, COPIED))
            continue
        try:
            verdict = judge(ex, answer, refs.expected(ex.name), nameable_mistakes(ex, refs.mistakes(ex.name), verdicts),
                            lambda ex=ex: refs.cases(ex.name), show_values=refs.inputs != HIDDEN)
        except MissingReferences:
            raise  # the instructor's problem, not the student's: stop loudly
        except Exception as exc:  # an answer the comparison cannot handle loses its exercise, not the class
            verdict = Verdict(ex.name, 0.0, f"the recorded answer could not be judged ({exc.__class__.__name__})")
        if answer is None and problem:
            verdict = Verdict(ex.name, 0.0, "no answer was recorded: the run stopped early (see the status)")
        verdicts.append(verdict)
    return with_dependency_notes(spec, verdicts)


def _copies_of_public(spec: LabSpec, refs: References, answers: dict) -> set[str]:
    """The exercises whose recordings copy the package's public references instead of answering.

    Strong evidence on one exercise is enough; a weak match (one value, perhaps a wrong answer
    that happens to equal it) counts only in a submission caught copying elsewhere.
    """
    try:
        public = References.open(PACKAGE_REFERENCES, spec.name, PUBLIC)
    except MissingReferences:
        return set()
    evidence = {}
    for ex in spec.exercises:
        answer = answers[ex.name]
        if isinstance(answer, AnswerError) or answer is None:
            continue
        try:
            evidence[ex.name] = copy_evidence(answer, refs.expected(ex.name), public.expected(ex.name))
        except (MissingReferences, AnswerError):
            continue
    if STRONG not in evidence.values():
        return set()
    return {name for name, found in evidence.items() if found}


def with_dependency_notes(spec: LabSpec, verdicts: list[Verdict]) -> list[Verdict]:
    """Point a failure at the earlier exercise it probably inherits (fix that one first)."""
    failed = {v.exercise for v in verdicts if not v.passed}
    noted = []
    for v in verdicts:
        culprits = [u for u in spec.exercise(v.exercise).uses if u in failed]
        if v.exercise in failed and culprits:
            v = Verdict(v.exercise, v.score, f"{v.message} (this exercise calls your {', '.join(culprits)}, "
                                             "which is wrong too: fix that first)")
        noted.append(v)
    return noted


def write_verdict(cell: nbformat.NotebookNode, verdict: Verdict, points: float) -> None:
    """Make a test cell's outputs say the verdict in the form nbgrader scores."""
    mark = "✅" if verdict.passed else ("🟡" if verdict.score > 0 else "❌")
    text = f"{mark} {verdict.exercise}: {verdict.message}\n"
    if verdict.score > 0:
        earned = round(points * verdict.score, 4)
        cell.outputs = [
            new_output("stream", name="stdout", text=text),
            new_output("execute_result", data={"text/plain": repr(earned)}, execution_count=None),
        ]
    else:
        cell.outputs = [new_output("error", ename="WrongAnswer", evalue=text.strip(), traceback=[text.strip()])]


def copy_student_outputs(
    nb: nbformat.NotebookNode, executed: nbformat.NotebookNode | None, output_bytes: int = Limits.output_bytes,
    notebook_output_bytes: int = Limits.notebook_output_bytes,
) -> None:
    """Show the student's own outputs in the graded notebook, cell by cell where sources agree,
    as static content only (``interplab.grading.sanitize``): the feedback and the formgrader show
    them in the instructor's browser.

    The executed notebook comes out of the sandbox: a submission that kills its runner can
    leave one of its own making, outputs and all, so the runner's cap on output is applied
    again here, in bytes per cell and for the notebook as a whole.
    """
    if executed is None or len(executed.cells) != len(nb.cells):
        return
    left = notebook_output_bytes
    for cell, ran in zip(nb.cells, executed.cells):
        if cell.cell_type == "code" and ran.get("source") == cell.source:
            outputs = ran.get("outputs", [])
            if len(json.dumps(outputs).encode()) <= 16 * output_bytes:  # cleaning drops scripts: it may fit after
                outputs = [clean_output(o, output_bytes) for o in outputs]
            size = len(json.dumps(outputs).encode())
            if size > min(output_bytes, left):
                what = "this cell's output" if size > output_bytes else "the notebook's outputs"
                limit = output_bytes if size > output_bytes else notebook_output_bytes
                outputs = [new_output("stream", name="stdout", text=f"[output cut: {what} went over {limit} bytes]\n")]
                size = 0
            left -= size
            cell.outputs = outputs


def hidden_cases(directory: Path) -> dict[str, bytes]:
    """The hidden cases' arguments as data, file name -> contents (``References.arguments_dir``):
    all a kernel is handed of the references while it is graded, and all that a run elsewhere is sent."""
    if not directory.is_dir():
        raise MissingReferences(f"no hidden input cases in {directory}: make the references again with `interplab references`")
    return {path.name: path.read_bytes() for path in sorted(directory.iterdir()) if path.is_file()}


def hand_over(cases: Mapping[str, bytes], target: Path, uid: int | None) -> None:
    """Write the hidden cases' arguments into the submission's private folder (owned by its user).

    Copies, not the references' own folder: those stay readable by the grader alone, and whatever
    the submission does to its copy can only spoil its own answers.
    """
    target.mkdir()
    for name, data in cases.items():
        if name != Path(name).name or name.startswith("."):
            raise ValueError(f"{name!r} is not the name of a hidden case file (one file per exercise, no folders)")
        (target / name).write_bytes(data)
    for path in [target, *target.iterdir()]:
        path.chmod(0o755 if path.is_dir() else 0o644)
        if uid is not None:
            os.chown(path, uid, uid)


@contextlib.contextmanager
def _scratch() -> Iterator[Path]:
    """A temporary folder for one run, removed afterwards whatever the submission left in it.

    ``shutil.rmtree`` recurses, so a tree deeper than Python's recursion limit (easy to make)
    made ``TemporaryDirectory`` raise and the whole submission go ungraded; coreutils' ``rm``
    walks it without recursion, and never follows a symlink out of it.
    """
    tmp = Path(tempfile.mkdtemp(prefix="interplab-grade-"))
    try:
        yield tmp
    finally:
        subprocess.run(["rm", "-rf", "--one-file-system", "--", str(tmp)], stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        if tmp.exists():
            try:
                shutil.rmtree(tmp, ignore_errors=True)
            except RecursionError:
                pass  # leave it rather than lose the grades


# -- one sandboxed run, as plain data ----------------------------------------------------------

#: What a path of a run's answers folder was (``Recorded.kind``).
FILE, FOLDER, LINK, TOO_BIG, OTHER = "file", "folder", "link", "too big", "other"
#: The paths under a run's answers folder that the judge reads, besides the folder and ``hidden/``.
_ANSWER_FILE = re.compile(rf"^{HIDDEN}/[a-z][a-z0-9_]{{0,63}}\.safetensors$")


@dataclass(frozen=True)
class Recorded:
    """One path of a run's answers folder as the judge would find it: a file's bytes, or what was there instead."""

    kind: str
    data: bytes = b""
    #: A file over the judge's ``MAX_ANSWER_BYTES``: its size (its bytes are not read).
    size: int = 0


@dataclass(frozen=True)
class Recording:
    """What one sandboxed run hands back (``run_sandboxed``): plain data, so it may come from another machine."""

    #: The executed notebook as nbformat's JSON; None when the run left none.
    notebook: str | None
    #: The answers folder, by path under it ("" is the folder itself): what ``verdicts_for`` reads.
    answers: dict[str, Recorded]
    #: How the run went wrong (a limit, a crash), or None.
    problem: str | None
    #: Why it ran without isolation (``Sandbox.problem``), or None.
    sandbox_problem: str | None

    def executed(self) -> nbformat.NotebookNode | None:
        """The executed notebook, if a well-formed one came back."""
        if self.notebook is None:
            return None
        try:
            nb = nbformat.reads(self.notebook, as_version=4)
            nbformat.validate(nb)
            return nb
        except Exception:
            return None


def run_sandboxed(notebook: str, cases: Mapping[str, bytes], exercises: Sequence[str], limits: Limits = Limits(),
                  isolate: bool = True, first_uid: int = FIRST_UID) -> Recording:
    """Run one submission in the sandbox and record its answers on the hidden cases; judge nothing.

    ``notebook``: the submission as nbgrader restored it (locked cells and hidden tests), as JSON;
    ``cases``: the hidden cases' files (``hidden_cases``); ``exercises``: the lab's exercise names,
    whose recordings come back. Plain data in and out, so that the same call runs here or on a Dask
    worker of another machine (``interplab.grading.cluster``), which prepares its own private folder
    and claims its own user. A second call with the same arguments runs the submission again from
    nothing and touches nothing else: a worker lost mid-run costs a rerun, never a grade.
    """
    # As root, run as a user no other grading run on this machine holds meanwhile (a second
    # grader's kill_user would otherwise kill this kernel); the claim starts at ``first_uid``.
    with (claim_uid(first_uid) if os.geteuid() == 0 else contextlib.nullcontext(None)) as uid, _scratch() as tmp:
        sandbox = Sandbox(limits, uid=first_uid if uid is None else uid, isolate=isolate)
        if sandbox.uid is not None:
            kill_user(sandbox.uid)  # left over by a grader that crashed holding this user
        private = tmp / "private"
        sandbox.prepare(private)
        (private / "submission.ipynb").write_text(notebook if notebook.endswith("\n") else notebook + "\n",
                                                  encoding="utf-8")
        hand_over(cases, private / "inputs", sandbox.uid)
        run = run_notebook(
            private / "submission.ipynb", private / "executed.ipynb", cwd=private,
            env={RECORD_DIR_ENV: str(private / "answers"), RECORD_INPUTS_ENV: HIDDEN,
                 INPUTS_DIR_ENV: str(private / "inputs")},
            limits=limits, sandbox=sandbox,
        )
        if sandbox.uid is not None:
            kill_user(sandbox.uid)  # nothing of the submission outlives its run
        answers = collect_answers(private / "answers", exercises)
    executed = None if run.notebook is None else nbformat.writes(run.notebook)
    return Recording(executed, answers, run.problem, sandbox.problem)


def _kind(path: Path) -> str | None:
    """What is at ``path`` (never following a link), or None if nothing is."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return None
    except OSError:
        return OTHER
    if stat.S_ISLNK(mode):
        return LINK
    if stat.S_ISDIR(mode):
        return FOLDER
    return FILE if stat.S_ISREG(mode) else OTHER


def collect_answers(folder: Path, exercises: Sequence[str]) -> dict[str, Recorded]:
    """What ``verdicts_for`` would read of a run's answers folder, as data (``rebuild_answers`` puts it back).

    Only the paths the judge looks at: the folder, its ``hidden/`` and one file per exercise. A link
    is never followed, not even as a folder on the way, and a file too big for the judge is not read.
    """
    found: dict[str, Recorded] = {}
    for rel in ("", HIDDEN):
        kind = _kind(folder / rel)
        if kind is None:
            return found
        found[rel] = Recorded(kind)
        if kind != FOLDER:
            return found  # the judge finds no answer under it (or refuses the link)
    for name in exercises:
        rel = f"{HIDDEN}/{name}.safetensors"
        kind = _kind(folder / rel)
        if kind == FILE:
            fd = os.open(folder / rel, os.O_RDONLY | os.O_NOFOLLOW)
            with os.fdopen(fd, "rb") as f:
                data = f.read(MAX_ANSWER_BYTES + 1)
                size = os.fstat(f.fileno()).st_size
            found[rel] = Recorded(FILE, data) if len(data) <= MAX_ANSWER_BYTES else Recorded(TOO_BIG, size=size)
        elif kind is not None:
            found[rel] = Recorded(kind)
    return found


def rebuild_answers(answers: Mapping[str, Recorded], folder: Path) -> None:
    """Put a run's answers folder (``collect_answers``) back here, for ``verdicts_for`` to judge as if the
    run had been here: a link comes back as a link (to nowhere), a file too big as a sparse one of its size,
    anything else that is not a file or folder as a folder (the judge says only that it is not a file)."""
    for rel in sorted(answers, key=lambda r: (r.count("/") + bool(r), r)):  # "", then hidden/, then its files
        if rel not in ("", HIDDEN) and not _ANSWER_FILE.match(rel):
            raise ValueError(f"{rel!r} is not a path of a run's answers folder")
        path = folder / rel
        if rel and not (path.parent.is_dir() and not path.parent.is_symlink()):
            continue  # under a link or a file: the judge never looks there
        entry = answers[rel]
        if entry.kind == LINK:
            path.symlink_to("the-submission-left-a-link-here")
        elif entry.kind == FILE:
            path.write_bytes(entry.data)
        elif entry.kind == TOO_BIG:
            with path.open("wb") as f:
                f.truncate(entry.size)
        else:  # FOLDER, or OTHER (a FIFO, a device): neither holds an answer
            path.mkdir()


class TrustedExecute(NbGraderPreprocessor):
    """Run a submission (here or on a Dask cluster), record its answers, judge them here against the references."""

    references = Unicode("", help="Folder of reference outputs (one subfolder per lab).").tag(config=True)
    results = Unicode("", help="Folder where each student's verdicts are saved as JSON.").tag(config=True)
    cell_timeout = Int(Limits.cell_seconds, help="Seconds one cell may run.").tag(config=True)
    notebook_timeout = Int(Limits.notebook_seconds, help="Seconds the whole notebook may run.").tag(config=True)
    memory = Int(Limits.memory_bytes, help="Address space of each process, bytes.").tag(config=True)
    limits = Dict(help="Other fields of interplab.grading.sandbox.Limits, by name.").tag(config=True)
    isolate = Bool(True, help="Run submissions in the bubblewrap sandbox when it can start.").tag(config=True)
    uid = Int(FIRST_UID, help="Unprivileged user that runs submissions (when grading as root).").tag(config=True)
    cluster = Unicode("", help="Address of a Dask scheduler whose workers run the submissions "
                               "(interplab.grading.cluster); empty: run them here.").tag(config=True)

    def preprocess(self, nb, resources):
        info = resources["nbgrader"]
        spec = get_lab(info["assignment"])
        refs = References.open(Path(self.references), spec.name, HIDDEN)
        limits = Limits(**{**self.limits, "cell_seconds": self.cell_timeout, "notebook_seconds": self.notebook_timeout,
                           "memory_bytes": self.memory})
        notebook, exercises = nbformat.writes(nb), [ex.name for ex in spec.exercises]
        if self.cluster:  # the same run on a Dask worker: the hidden cases travel as data, the judging stays here
            from interplab.grading.cluster import run_on_cluster

            recording = run_on_cluster(self.cluster, refs.arguments_dir, f"{spec.name}-{info['student']}",
                                       notebook, exercises, limits, self.isolate, self.uid)
        else:
            recording = run_sandboxed(notebook, hidden_cases(refs.arguments_dir), exercises, limits,
                                      self.isolate, self.uid)
        with _scratch() as tmp:
            rebuild_answers(recording.answers, tmp / "answers")
            verdicts = verdicts_for(spec, refs, tmp / "answers", recording.problem)
        problem = "; ".join(p for p in (recording.sandbox_problem, recording.problem) if p) or None
        copy_student_outputs(nb, recording.executed(), limits.output_bytes, limits.notebook_output_bytes)
        clean_cells(nb)
        cells = grade_ids(nb)
        for verdict in verdicts:
            cell = nb.cells[cells[LabSpec.test_cell_id(verdict.exercise)]]
            write_verdict(cell, verdict, float(cell.metadata["nbgrader"]["points"]))
        self._save(info["student"], spec.name, verdicts, problem, recording.sandbox_problem is None)
        return nb, resources

    def _save(self, student: str, lab: str, verdicts: list[Verdict], problem: str | None, isolated: bool) -> None:
        if not self.results:
            return
        path = Path(self.results) / lab / f"{student}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        record = {"problem": problem, "isolated": isolated,
                  "verdicts": {v.exercise: [v.score, v.message] for v in verdicts}}
        path.write_text(json.dumps(record, indent=1))
