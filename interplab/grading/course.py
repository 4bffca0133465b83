"""Where a course's files live, and the one nbgrader configuration every command uses.

The course root is the repository: ``solutions/`` (nbgrader's source), ``labs/`` (the release,
committed so students can open a lab directly) and ``autograder/`` (references, mutants and
nbgrader's working folder ``autograder/workspace/`` with the gradebook, submissions,
autograded notebooks and feedback). ``autograder/nbgrader_config.py`` calls ``configure`` so
that plain ``nbgrader`` commands run from ``autograder/`` see the same course.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from traitlets.config import Config

COURSE_ID = "interplab"


def find_root(start: Path | None = None) -> Path:
    """The course repository containing ``start`` (default: the working directory)."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "solutions").is_dir() and (folder / "autograder").is_dir():
            return folder
    raise FileNotFoundError(
        f"{here} is not inside an interplab course (no solutions/ and autograder/ above it): "
        "run this from your clone of the course, or pass --course DIR"
    )


def workspace(root: Path) -> Path:
    return root / "autograder" / "workspace"


def default_references(root: Path) -> Path:
    return root / "autograder" / "references"


def _tools_on_path() -> None:
    """nbgrader shells out to ``alembic`` (installed beside this Python) to set up its gradebook;
    make it findable when the virtual environment was not activated (``make test``, cron jobs)."""
    tools = str(Path(sys.executable).parent)
    if tools not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = os.pathsep.join([tools, os.environ.get("PATH", "")])


def configure(c: Config, root: Path, work: Path | None = None, release: Path | None = None) -> Config:
    """Point nbgrader at this course and swap its test runner for the trusted one."""
    from nbgrader.preprocessors import AssignLatePenalties, CheckCellMetadata, LimitOutput, SaveAutoGrades

    from interplab.grading.trusted import TrustedExecute

    _tools_on_path()
    work = Path(work or workspace(root)).resolve()
    work.mkdir(parents=True, exist_ok=True)
    c.CourseDirectory.course_id = COURSE_ID
    c.CourseDirectory.root = str(work)
    c.CourseDirectory.source_directory = str((root / "solutions").resolve())
    c.CourseDirectory.release_directory = str(Path(release or work / "release").resolve())
    c.CourseDirectory.db_url = f"sqlite:///{work / 'gradebook.db'}"
    # nbgrader's exchange (its student-side Assignments tab) defaults to /usr/local/share, which
    # most machines lack or only root may write; the course hands labs out by git or Colab instead.
    (work / "exchange").mkdir(exist_ok=True)
    c.Exchange.root = str(work / "exchange")
    c.GenerateAssignment.create_assignment = True
    c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
    c.OverwriteCells.add_missing_cells = True
    c.Autograde.autograde_preprocessors = [
        TrustedExecute, LimitOutput, SaveAutoGrades, AssignLatePenalties, CheckCellMetadata
    ]
    c.TrustedExecute.references = str(default_references(root).resolve())
    c.TrustedExecute.results = str(work / "results")
    return c
