"""nbgrader for the course's instructors on the hub: the course (as `interplab grade` sees it) and the exchange.

Run nbgrader's commands from this folder (it then reads this file), e.g.

    cd autograder/hub/instructor && nbgrader release_assignment 02_induction

The hub also points instructors' own servers here. The course folder is the course's
autograder/workspace, or INTERPLAB_WORK when set (a folder of the instructor's own when the course is
installed read-only, e.g. in /opt). The exchange settings are those of ../student/nbgrader_config.py.
"""

import os
import sys
from pathlib import Path

from interplab.grading.course import configure

c = get_config()  # noqa: F821 (provided by nbgrader when it loads this file)
HERE = Path(__file__).resolve().parent
work = os.environ.get("INTERPLAB_WORK")
configure(c, HERE.parents[2], work=Path(work) if work else None)
load_subconfig(str(HERE.parent / "student" / "nbgrader_config.py"))  # noqa: F821 (provided with get_config)
# nbgrader collect puts each student's notebook, as submitted, in collected/<student>/<lab>/; `interplab grade`
# repairs a copy of it into submitted/, which nbgrader's autograde reads. The originals stay as they came.
c.CourseDirectory.submitted_directory = "collected"
# Each submission only from the student it names: a forgery under a classmate's name stays in the exchange.
sys.path.insert(0, str(HERE))
c.ExchangeFactory.collect = "owner_checked_collect.OwnerCheckedCollect"
