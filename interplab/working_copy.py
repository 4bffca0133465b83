"""``interplab start``: a student's own copies of the lessons and labs, in ``work/``.

The notebooks under ``lessons/`` and ``labs/`` belong to the course: they are generated,
committed and tested, and they change when the course is updated. Running or saving one in
JupyterLab writes outputs and metadata into it, which would fail ``make test`` and make the next
``git pull`` conflict. So students work in ``work/`` (ignored by git), which mirrors the course's
layout: ``work/labs/02_induction/induction_heads.ipynb`` is your copy of
``labs/02_induction/induction_heads.ipynb``.

A copy that exists is never overwritten. ``--fresh`` replaces it with the course's current
version and keeps the old one beside it as a dated backup, so nothing a student wrote is lost.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat

from interplab.syllabus import module

WORK = "work"


@dataclass(frozen=True)
class Copied:
    original: Path
    copy: Path
    #: "new", "kept" (already there, untouched), "outdated" (kept, but the course's version has
    #: changed since: a lab's locked cells differ), or "fresh" (replaced; the old one is in ``backup``).
    status: str
    backup: Path | None = None


def course_notebooks(root: Path, names: list[str] | None = None) -> list[Path]:
    """Every lesson and lab notebook, or those of the modules named (number, lab or lesson name)."""
    notebooks = sorted((root / "lessons").glob("*.ipynb")) + sorted((root / "labs").glob("*/*.ipynb"))
    if not names:
        return notebooks
    wanted = set()
    for name in names:
        m = module(name)
        wanted |= {m.lesson_path(root), *m.lab_notebooks(root)}
        if not m.built(root):
            raise FileNotFoundError(f"module {m.number} ({m.title}) is not built yet: there is no {m.lesson}")
    return [p for p in notebooks if p in wanted]


def start(root: Path, names: list[str] | None = None, fresh: bool = False, into: Path | None = None) -> list[Copied]:
    """Copy the course's notebooks (all, or the modules named) into ``into`` (default ``root/work``)."""
    into = into or root / WORK
    done = []
    for original in course_notebooks(root, names):
        copy = into / original.relative_to(root)
        if not copy.exists():
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(original, copy)
            done.append(Copied(original, copy, "new"))
        elif fresh:
            backup = copy.with_name(f"{copy.stem}.backup-{time.strftime('%Y%m%d-%H%M%S')}{copy.suffix}")
            copy.rename(backup)
            shutil.copyfile(original, copy)
            done.append(Copied(original, copy, "fresh", backup))
        else:
            done.append(Copied(original, copy, "outdated" if outdated(copy, original) else "kept"))
    return done


def outdated(copy: Path, original: Path) -> bool:
    """Whether the course's lab has changed since ``copy`` was made: its locked cells (the
    instructions and checks a student cannot edit) differ. Lessons are editable throughout,
    so a lesson copy is never called outdated."""
    def locked(path: Path) -> dict[str, str]:
        nb = nbformat.read(str(path), as_version=4)
        return {c.metadata["nbgrader"]["grade_id"]: c.source for c in nb.cells
                if c.metadata.get("nbgrader", {}).get("locked")}

    try:
        return locked(copy) != locked(original)
    except Exception:  # an unreadable copy is the student's to fix, not ours to call outdated
        return False


def report(done: list[Copied], into: Path) -> str:
    """What ``interplab start`` prints: a line per notebook copied, refreshed or outdated, and a summary."""
    def shown(path: Path) -> str:
        return str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else str(path)

    lines = []
    for c in done:
        if c.status == "new":
            lines.append(f"new       {shown(c.copy)}")
        elif c.status == "fresh":
            lines.append(f"fresh     {shown(c.copy)}  (your previous copy is {c.backup.name})")
        elif c.status == "outdated":
            lines.append(f"outdated  {shown(c.copy)}: the course's version has changed since you copied it; run "
                         f"`interplab start {c.original.parent.name} --fresh` to get it (yours is kept as a backup)")
    copied = sum(c.status in ("new", "fresh") for c in done)
    lines.append(f"{len(done)} notebook{'' if len(done) == 1 else 's'} in {shown(into)}/: {copied} copied, {len(done) - copied} already there "
                 "and kept. Work in these copies: the course's own notebooks stay as they are.")
    return "\n".join(lines)
