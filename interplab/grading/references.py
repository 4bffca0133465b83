"""``interplab references``: make reference outputs by running the solutions.

First the hidden cases are built from the chosen seed, here, and saved as data with the
references (``interplab.casefile``); a graded kernel is later handed the same files, never the seed.
Then the solution notebook is run with recording on: every ``lab.check`` saves the solution's
outputs on the public inputs, every ``lab.record`` on those hidden cases.
Each known mistake in ``autograder/mutants/<lab>.json`` (a one-line edit of the solution) is
run the same way, so the checks can recognise it in a student's answer and say what is wrong.
Public references go into the package (students check against them, on Colab too); hidden
ones go to ``autograder/references`` or, for a private seed, wherever ``--out`` says.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import nbformat
from tqdm.auto import tqdm

from interplab import casefile
from interplab.answers import load_cases
from interplab.checker import INPUTS_DIR_ENV, RECORD_DIR_ENV, RECORD_ONLY_ENV
from interplab.exercises import PUBLIC_SEED, get_lab
from interplab.grading.execute import run_notebook
from interplab.grading.sandbox import Limits
from interplab.reference import HIDDEN, JUDGE, PACKAGE_REFERENCES, PUBLIC, write_meta


@dataclass(frozen=True)
class Mutant:
    """A plausible mistake: one edit of one exercise's solution, and what to tell its author."""

    name: str
    exercise: str
    find: str
    replace: str
    message: str

    def apply(self, nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
        """A copy of ``nb`` with the edit made; the text to find must occur exactly once."""
        nb = nbformat.from_dict(json.loads(json.dumps(nb)))
        hits = [c for c in nb.cells if c.cell_type == "code" and self.find in c.source]
        if len(hits) != 1 or hits[0].source.count(self.find) != 1:
            raise ValueError(f"mutant {self.name}: {self.find!r} must occur once in the solution's code")
        hits[0].source = hits[0].source.replace(self.find, self.replace)
        return nb


def solution_path(root: Path, lab: str) -> Path:
    return root / "solutions" / lab / f"{get_lab(lab).notebook}.ipynb"


def load_mutants(root: Path, lab: str) -> list[Mutant]:
    path = root / "autograder" / "mutants" / f"{lab}.json"
    return [Mutant(**m) for m in json.loads(path.read_text())] if path.exists() else []


#: The instructor's own notebooks are trusted: limits only stop a run that hangs, and are loose
#: enough for a machine under load (a lab that trains models can take minutes in one cell there).
TRUSTED = Limits(cell_seconds=1800, notebook_seconds=7200)


def write_inputs(lab: str, seed: int | str, folder: Path) -> Path:
    """Build every exercise's hidden cases from ``seed`` and save them in ``folder``: the arguments
    in ``hidden/`` (what a kernel is handed), the judge's items in ``judge/``. Returns ``folder/hidden``."""
    exercises = get_lab(lab).exercises
    for ex in tqdm(exercises, desc=f"{lab}: hidden inputs", unit="exercise", leave=False):
        cases = ex.build_cases(seed)
        casefile.save(folder / HIDDEN, ex.name, [ex.arguments(case) for case in cases])
        if ex.judge_only:
            casefile.save(folder / JUDGE, ex.name, [ex.judge_items(case) for case in cases])
    return folder / HIDDEN


def through_last_check(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """``nb`` up to its last graded cell: what comes after records nothing (a lab's ungraded exploring), so
    the runs that make references, one per known mistake, need not spend their time on it."""
    graded = [i for i, cell in enumerate(nb.cells) if cell.metadata.get("nbgrader", {}).get("grade")]
    if not graded:
        return nb
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    nb.cells = nb.cells[: graded[-1] + 1]
    return nb


def record(nb: nbformat.NotebookNode, root: Path, inputs: Path, out: Path, only: str | None = None) -> Path:
    """Run a notebook with recording on, on the hidden cases in ``inputs``; returns the folder of answers.
    ``only``: the one exercise whose answers are wanted (the others' checks then do nothing)."""
    out.mkdir(parents=True, exist_ok=True)
    nbformat.write(through_last_check(nb), str(out / "notebook.ipynb"))
    env = {RECORD_DIR_ENV: str(out / "answers"), INPUTS_DIR_ENV: str(inputs)} | ({RECORD_ONLY_ENV: only} if only else {})
    run = run_notebook(out / "notebook.ipynb", out / "executed.ipynb", cwd=root, env=env, limits=TRUSTED)
    if run.problem:
        raise RuntimeError(f"{out.name}: {run.problem}")
    return out / "answers"


def _require_complete(answers: Path, lab: str) -> None:
    """The solution must answer every case of every exercise, on both sets of inputs."""
    for inputs in (PUBLIC, HIDDEN):
        for ex in get_lab(lab).exercises:
            cases = load_cases(answers / inputs, ex.name)
            if cases is None or any(c.value is None for c in cases):
                errors = [c.error for c in cases or [] if c.error] or _cell_errors(answers.parent / "executed.ipynb")
                raise RuntimeError(f"the solution of {lab} failed {ex.name} on {inputs} inputs: "
                                   f"{errors or 'nothing recorded'}")


def _cell_errors(executed: Path) -> list[str]:
    """What went wrong in a run's cells (a timeout, an exception), to explain a missing answer."""
    nb = nbformat.read(str(executed), as_version=4)
    return [f"{o.get('ename')}: {o.get('evalue')}" for c in nb.cells if c.cell_type == "code"
            for o in c.get("outputs", []) if o.get("output_type") == "error"]


def make_references(
    root: Path, lab: str, seed: int | str, out: Path, public_out: Path = PACKAGE_REFERENCES, workers: int = 2
) -> dict:
    """Build the hidden cases, run the solution and its mutants on them; write hidden references
    (with the cases) to ``out`` and public ones to ``public_out``."""
    solution = nbformat.read(str(solution_path(root, lab)), as_version=4)
    mutants = load_mutants(root, lab)
    with tempfile.TemporaryDirectory(prefix="interplab-refs-") as tmp:
        tmp = Path(tmp)
        inputs = write_inputs(lab, seed, tmp / "inputs")
        jobs = [("solution", solution, None)] + [(m.name, m.apply(solution), m.exercise) for m in mutants]
        with ThreadPoolExecutor(max_workers=workers) as pool:
            runs = pool.map(lambda job: record(job[1], root, inputs, tmp / job[0], only=job[2]), jobs)
            folders = list(tqdm(runs, total=len(jobs), desc=f"{lab}: solution and known mistakes", unit="run"))
        recorded = dict(zip([name for name, _, _ in jobs], folders))
        _require_complete(recorded["solution"], lab)
        meta = {"lab": lab, "public_seed": PUBLIC_SEED,
                "mistakes": {m.name: {"exercise": m.exercise, "message": m.message} for m in mutants}}
        for kind, target, seed_value in ((HIDDEN, Path(out) / lab, seed), (PUBLIC, Path(public_out) / lab, None)):
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(recorded["solution"] / kind, target / "expected" / kind)
            for m in mutants:
                answer = recorded[m.name] / kind / f"{m.exercise}.safetensors"
                if not answer.exists():
                    raise RuntimeError(f"known mistake {m.name} recorded no answer to {m.exercise}: "
                                       f"{_cell_errors(recorded[m.name].parent / 'executed.ipynb') or 'nothing ran'}"
                                       f" (does its edit leave valid code?)")
                (target / "mistakes" / m.name / kind).mkdir(parents=True)
                shutil.copy(answer, target / "mistakes" / m.name / kind / answer.name)
            if kind == HIDDEN:
                shutil.copytree(inputs.parent, target / "inputs")
            write_meta(target, {**meta, "seed": seed_value})
            _set_modes(target, private=kind == HIDDEN)
    return meta


def _set_modes(folder: Path, private: bool) -> None:
    """Hidden references readable by their owner only; public ones by anyone (the sandbox too)."""
    for path in [folder, *folder.rglob("*")]:
        path.chmod((0o700 if path.is_dir() else 0o600) if private else (0o755 if path.is_dir() else 0o644))
