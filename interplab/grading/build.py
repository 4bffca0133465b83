"""``interplab build``: stamp the course's Colab source into every notebook, then regenerate
the student labs from the solution notebooks.

``solutions/<lab>/<notebook>.ipynb`` is the single source; nbgrader's ``generate_assignment``
strips the solutions (leaving ``raise NotImplementedError()``) and the hidden tests, and
locks the test cells. The result is committed under ``labs/`` and a test fails when it drifts.
Drift is judged on what a lab *is* (each cell's type, source, lock and nbgrader metadata), not
on bytes: JupyterLab adds metadata when a notebook is saved, and that changes nothing a student
or the grader sees.
"""

from __future__ import annotations

import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import nbformat
from traitlets.config import Config

from interplab.colab import Source, stamp
from interplab.grading.course import configure

#: Files of a generated release that are nbgrader's bookkeeping, not part of a lab.
_SKIP = {".ipynb_checkpoints"}


def lab_names(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "solutions").iterdir() if p.is_dir() and p.name not in _SKIP)


@contextmanager
def fresh_release(root: Path, labs: list[str]) -> Iterator[Path]:
    """nbgrader generate_assignment for each lab into a temporary ``release/<lab>/``."""
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    with tempfile.TemporaryDirectory(prefix="interplab-build-") as tmp:
        release = Path(tmp) / "release"
        config = configure(Config(), root, work=Path(tmp) / "work", release=release)
        api = NbGraderAPI(CourseDirectory(config=config), config=config)
        for lab in labs:
            result = api.generate_assignment(lab, force=True)
            if not result["success"]:
                raise RuntimeError(f"nbgrader could not generate lab {lab}:\n{result['error'] or result['log']}")
        yield release


def stamped_notebooks(root: Path) -> dict[Path, str]:
    """Every notebook that carries the Colab source, and the path its badge opens: a lesson opens
    itself; a solution opens the student lab made from it."""
    notebooks = {p: p.relative_to(root).as_posix() for p in sorted((root / "lessons").glob("*.ipynb"))}
    for path in sorted((root / "solutions").glob("*/*.ipynb")):
        if not _SKIP & set(path.parts):
            notebooks[path] = f"labs/{path.parent.name}/{path.name}"
    return notebooks


def stamp_all(root: Path, check: bool = False) -> list[Path]:
    """Stamp ``[tool.interplab.colab]`` into lessons and solutions (labs inherit it when built).

    Returns the notebooks that were out of date; with ``check``, only reports them.
    """
    source = Source.read(root)
    stale = []
    for path, opens in stamped_notebooks(root).items():
        nb = nbformat.read(str(path), as_version=4)
        if stamp(nb, opens, source):
            stale.append(path)
            if not check:
                nbformat.write(nb, str(path))
    return stale


def build(root: Path, labs: list[str] | None = None) -> list[Path]:
    """Stamp the Colab source, regenerate ``labs/`` from ``solutions/``; returns the notebooks written."""
    labs = labs or lab_names(root)
    written = stamp_all(root)
    with fresh_release(root, labs) as release:
        for lab in labs:
            target = root / "labs" / lab
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(release / lab, target, ignore=shutil.ignore_patterns(*_SKIP))
            written += sorted(target.glob("*.ipynb"))
    return written


def essence(path: Path) -> list[tuple]:
    """What a notebook is, for drift: each cell's type, source, locks and nbgrader metadata.

    Left out: outputs, execution counts, cell ids and notebook metadata, which running and saving
    a notebook in JupyterLab (or pressing Validate) change without changing the lab.
    """
    nb = nbformat.read(str(path), as_version=4)
    return [(c.cell_type, c.source, c.metadata.get("nbgrader"), c.metadata.get("editable"), c.metadata.get("deletable"))
            for c in nb.cells]


def _same(fresh: Path, committed: Path) -> bool:
    if fresh.suffix == ".ipynb":
        try:
            return essence(fresh) == essence(committed)
        except Exception:  # not a readable notebook: it differs
            return False
    return fresh.read_bytes() == committed.read_bytes()


def drift(root: Path, labs: list[str] | None = None) -> list[str]:
    """How the course differs from what ``build`` would make (empty when in sync): notebooks whose
    Colab badge or set-up cell is not the current setting, and labs that differ from their solution."""
    labs = labs or lab_names(root)
    problems = [f"{p.relative_to(root)} is not stamped with [tool.interplab.colab]" for p in stamp_all(root, check=True)]
    with fresh_release(root, labs) as release:
        for lab in labs:
            fresh = {p.relative_to(release / lab): p for p in (release / lab).rglob("*") if p.is_file()}
            committed = {p.relative_to(root / "labs" / lab): p for p in (root / "labs" / lab).rglob("*")
                         if p.is_file() and not _SKIP & set(p.parts)}
            for rel in sorted(set(fresh) | set(committed)):
                if rel not in committed:
                    problems.append(f"labs/{lab}/{rel} is missing")
                elif rel not in fresh:
                    problems.append(f"labs/{lab}/{rel} is not made from solutions/")
                elif not _same(fresh[rel], committed[rel]):
                    problems.append(f"labs/{lab}/{rel} differs from its solution")
    return problems
