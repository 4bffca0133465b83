"""nbgrader configuration for JupyterLab started here (`make lab`): the formgrader and the
Validate button see the course (solutions/ as the source, autograder/workspace/ as nbgrader's
folder). The settings are those of interplab.grading.course.configure, which every interplab
command and autograder/nbgrader_config.py use too.
"""

from pathlib import Path

from interplab.grading.course import configure

c = get_config()  # noqa: F821 (provided by nbgrader when it loads this file)
configure(c, Path(__file__).resolve().parent)
