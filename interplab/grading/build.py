"""``interplab build``: regenerate the student labs from the solution notebooks.

``solutions/<lab>/<notebook>.ipynb`` is the single source; nbgrader's ``generate_assignment``
strips the solutions (leaving ``raise NotImplementedError()``) and the hidden tests, and
locks the test cells. The result is committed under ``labs/`` and a test fails when it drifts.
"""

from __future__ import annotations

import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from traitlets.config import Config

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


def build(root: Path, labs: list[str] | None = None) -> list[Path]:
    """Regenerate ``labs/`` from ``solutions/``; returns the notebooks written."""
    labs = labs or lab_names(root)
    written = []
    with fresh_release(root, labs) as release:
        for lab in labs:
            target = root / "labs" / lab
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(release / lab, target, ignore=shutil.ignore_patterns(*_SKIP))
            written += sorted(target.glob("*.ipynb"))
    return written


def drift(root: Path, labs: list[str] | None = None) -> list[str]:
    """Files under ``labs/`` that differ from what ``build`` would write (empty when in sync)."""
    labs = labs or lab_names(root)
    problems = []
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
                elif fresh[rel].read_bytes() != committed[rel].read_bytes():
                    problems.append(f"labs/{lab}/{rel} differs from its solution")
    return problems
