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
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import nbformat
from nbformat.v4 import new_output
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Bool, Dict, Int, Unicode

from interplab.answers import AnswerError, Case, load_cases
from interplab.checker import INPUTS_DIR_ENV, RECORD_DIR_ENV, RECORD_INPUTS_ENV
from interplab.exercises import LabSpec, get_lab
from interplab.grading.execute import run_notebook
from interplab.grading.sanitize import clean_cells, clean_output
from interplab.grading.sandbox import FIRST_UID, Limits, Sandbox, claim_uid, kill_user
from interplab.judge import COPIED, STRONG, Verdict, copy_evidence, judge
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
            verdict = judge(ex, answer, refs.expected(ex.name), refs.mistakes(ex.name),
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


def hand_over(cases: Path, target: Path, uid: int | None) -> None:
    """Copy the hidden cases' arguments into the submission's private folder (owned by its user).

    A copy, not the references' own folder: those stay readable by the grader alone, and whatever
    the submission does to its copy can only spoil its own answers.
    """
    if not cases.is_dir():
        raise MissingReferences(f"no hidden input cases in {cases}: make the references again with `interplab references`")
    shutil.copytree(cases, target)
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


class TrustedExecute(NbGraderPreprocessor):
    """Run a submission, record its answers, judge them against the references."""

    references = Unicode("", help="Folder of reference outputs (one subfolder per lab).").tag(config=True)
    results = Unicode("", help="Folder where each student's verdicts are saved as JSON.").tag(config=True)
    cell_timeout = Int(Limits.cell_seconds, help="Seconds one cell may run.").tag(config=True)
    notebook_timeout = Int(Limits.notebook_seconds, help="Seconds the whole notebook may run.").tag(config=True)
    memory = Int(Limits.memory_bytes, help="Address space of each process, bytes.").tag(config=True)
    limits = Dict(help="Other fields of interplab.grading.sandbox.Limits, by name.").tag(config=True)
    isolate = Bool(True, help="Run submissions in the bubblewrap sandbox when it can start.").tag(config=True)
    uid = Int(FIRST_UID, help="Unprivileged user that runs submissions (when grading as root).").tag(config=True)

    def preprocess(self, nb, resources):
        info = resources["nbgrader"]
        spec = get_lab(info["assignment"])
        refs = References.open(Path(self.references), spec.name, HIDDEN)
        limits = Limits(**{**self.limits, "cell_seconds": self.cell_timeout, "notebook_seconds": self.notebook_timeout,
                           "memory_bytes": self.memory})
        # As root, run as a user no other grading run on this machine holds meanwhile (a
        # second grader's kill_user would otherwise kill this kernel); the claim starts at
        # this worker's own user.
        with (claim_uid(self.uid) if os.geteuid() == 0 else contextlib.nullcontext(None)) as uid, _scratch() as tmp:
            sandbox = Sandbox(limits, uid=self.uid if uid is None else uid, isolate=self.isolate)
            if sandbox.uid is not None:
                kill_user(sandbox.uid)  # left over by a grader that crashed holding this user
            private = Path(tmp) / "private"
            sandbox.prepare(private)
            nbformat.write(nb, str(private / "submission.ipynb"))
            hand_over(refs.arguments_dir, private / "inputs", sandbox.uid)
            run = run_notebook(
                private / "submission.ipynb", private / "executed.ipynb", cwd=private,
                env={RECORD_DIR_ENV: str(private / "answers"), RECORD_INPUTS_ENV: HIDDEN,
                     INPUTS_DIR_ENV: str(private / "inputs")},
                limits=limits, sandbox=sandbox,
            )
            if sandbox.uid is not None:
                kill_user(sandbox.uid)  # nothing of the submission outlives its run
            problem = "; ".join(p for p in (sandbox.problem, run.problem) if p) or None
            verdicts = verdicts_for(spec, refs, private / "answers", run.problem)
        copy_student_outputs(nb, run.notebook, limits.output_bytes, limits.notebook_output_bytes)
        clean_cells(nb)
        cells = grade_ids(nb)
        for verdict in verdicts:
            cell = nb.cells[cells[LabSpec.test_cell_id(verdict.exercise)]]
            write_verdict(cell, verdict, float(cell.metadata["nbgrader"]["points"]))
        self._save(info["student"], spec.name, verdicts, problem, sandbox.problem is None)
        return nb, resources

    def _save(self, student: str, lab: str, verdicts: list[Verdict], problem: str | None, isolated: bool) -> None:
        if not self.results:
            return
        path = Path(self.results) / lab / f"{student}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        record = {"problem": problem, "isolated": isolated,
                  "verdicts": {v.exercise: [v.score, v.message] for v in verdicts}}
        path.write_text(json.dumps(record, indent=1))
