"""nbgrader's autograde step, with the verdicts reached outside the student's kernel.

Stock nbgrader runs the hidden tests in the student's kernel, so a student who redefines
``assert_close`` passes them. Here the ``Execute`` preprocessor of ``nbgrader autograde`` is
replaced by ``TrustedExecute``:

1. run the submission (nbgrader has already restored the locked cells, hidden tests included)
   in a child process that only *records* the answers of each exercise on hidden inputs;
2. compare the recordings with the reference outputs here, in the grader's process;
3. write each verdict into its test cell as the output nbgrader scores: a number for partial
   credit, an error for none, so nbgrader's gradebook, feedback and export work as usual.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import nbformat
from nbformat.v4 import new_output
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Bool, Int, Unicode

from interplab.answers import AnswerError, load_cases
from interplab.checker import RECORD_DIR_ENV, SEED_ENV
from interplab.exercises import LabSpec, get_lab
from interplab.grading.execute import run_notebook
from interplab.grading.sandbox import FIRST_UID, Limits, Sandbox, kill_user
from interplab.judge import Verdict, judge
from interplab.reference import HIDDEN, References


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
    verdicts = []
    for ex in spec.exercises:
        try:
            answer = load_cases(record_dir / HIDDEN, ex.name)
        except AnswerError as exc:
            verdicts.append(Verdict(ex.name, 0.0, f"the recorded answer was rejected: {exc}"))
            continue
        verdict = judge(ex, answer, refs.expected(ex.name), refs.mistakes(ex.name),
                        lambda ex=ex: ex.build_cases(refs.seed))
        if answer is None and problem:
            verdict = Verdict(ex.name, 0.0, "no answer was recorded: the run stopped early (see the status)")
        verdicts.append(verdict)
    return with_dependency_notes(spec, verdicts)


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


def copy_student_outputs(nb: nbformat.NotebookNode, executed: nbformat.NotebookNode | None) -> None:
    """Show the student's own outputs in the graded notebook, cell by cell where sources agree."""
    if executed is None or len(executed.cells) != len(nb.cells):
        return
    for cell, ran in zip(nb.cells, executed.cells):
        if cell.cell_type == "code" and ran.get("source") == cell.source:
            cell.outputs = ran.get("outputs", [])


class TrustedExecute(NbGraderPreprocessor):
    """Run a submission, record its answers, judge them against the references."""

    references = Unicode("", help="Folder of reference outputs (one subfolder per lab).").tag(config=True)
    results = Unicode("", help="Folder where each student's verdicts are saved as JSON.").tag(config=True)
    cell_timeout = Int(Limits.cell_seconds, help="Seconds one cell may run.").tag(config=True)
    notebook_timeout = Int(Limits.notebook_seconds, help="Seconds the whole notebook may run.").tag(config=True)
    memory = Int(Limits.memory_bytes, help="Address space of each process, bytes.").tag(config=True)
    isolate = Bool(True, help="Run submissions in the bubblewrap sandbox when it can start.").tag(config=True)
    uid = Int(FIRST_UID, help="Unprivileged user that runs submissions (when grading as root).").tag(config=True)

    def preprocess(self, nb, resources):
        info = resources["nbgrader"]
        spec = get_lab(info["assignment"])
        refs = References.open(Path(self.references), spec.name, HIDDEN)
        limits = Limits(cell_seconds=self.cell_timeout, notebook_seconds=self.notebook_timeout, memory_bytes=self.memory)
        sandbox = Sandbox(limits, uid=self.uid, isolate=self.isolate)
        with tempfile.TemporaryDirectory(prefix="interplab-grade-") as tmp:
            private = Path(tmp) / "private"
            sandbox.prepare(private)
            nbformat.write(nb, str(private / "submission.ipynb"))
            run = run_notebook(
                private / "submission.ipynb", private / "executed.ipynb", cwd=private,
                env={RECORD_DIR_ENV: str(private / "answers"), SEED_ENV: str(refs.seed)},
                limits=limits, sandbox=sandbox,
            )
            if sandbox.uid is not None:
                kill_user(sandbox.uid)  # nothing of the submission outlives its run
            problem = "; ".join(p for p in (sandbox.problem, run.problem) if p) or None
            verdicts = verdicts_for(spec, refs, private / "answers", run.problem)
        copy_student_outputs(nb, run.notebook)
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
