"""nbgrader for everyone on the course's hub: which course, and where its exchange is.

The hub points each user's server here (JUPYTER_CONFIG_PATH, set in ../jupyterhub_config.py), so the
Assignments tab fetches, submits and fetches feedback through the shared exchange. instructor/ loads
this file too, so both sides always agree on these settings.
"""

import os

from interplab.grading.course import COURSE_ID

c = get_config()  # noqa: F821 (provided by nbgrader when it loads this file)
c.CourseDirectory.course_id = COURSE_ID
c.Exchange.root = os.environ.get("INTERPLAB_EXCHANGE", "/srv/nbgrader/exchange")
# A student's copy of a lab goes to ~/interplab/<lab>/, apart from anything else in their home.
c.Exchange.path_includes_course = True
