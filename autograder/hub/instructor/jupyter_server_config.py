"""JupyterLab for the course's instructors on the hub: what students' servers have (../student/), formgrader included."""

from pathlib import Path

c = get_config()  # noqa: F821 (provided by Jupyter Server when it loads this file)
load_subconfig(str(Path(__file__).resolve().parent.parent / "student" / "jupyter_server_config.py"))  # noqa: F821
c.ServerApp.jpserver_extensions = {"nbgrader.server_extensions.formgrader": True}
