"""nbgrader configuration for this course: run nbgrader commands from autograder/.

The settings live in interplab.grading.course.configure, which the interplab command uses too,
so `nbgrader export`, `nbgrader generate_feedback` or the formgrader see the same gradebook.
"""

from pathlib import Path

from interplab.grading.course import configure

c = get_config()  # noqa: F821 (provided by nbgrader when it loads this file)
configure(c, Path(__file__).resolve().parent.parent)
