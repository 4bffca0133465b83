"""JupyterLab on the course's hub: students get the Assignments tab, not the instructor's tools, and
JupyterLab fetches nothing from the internet (no news feed, no update check, no PyPI extension listing)."""

c = get_config()  # noqa: F821 (provided by Jupyter Server when it loads this file)
c.ServerApp.jpserver_extensions = {"nbgrader.server_extensions.formgrader": False}
c.LabApp.news_url = None
c.LabApp.check_for_updates_class = "jupyterlab.handlers.announcements.NeverCheckForUpdate"
c.LabApp.extension_manager = "readonly"
