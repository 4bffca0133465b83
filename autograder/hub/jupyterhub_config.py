"""JupyterHub for an interplab course that hands labs out and in through nbgrader's exchange.

Start it as root (it starts each user's server as that Unix user, which is how nbgrader's exchange
tells students apart), from anywhere:

    INTERPLAB_HUB_STUDENTS=alice,bob INTERPLAB_HUB_INSTRUCTORS=teacher \\
        /opt/interplab/.venv/bin/jupyterhub -f /opt/interplab/autograder/hub/jupyterhub_config.py

docs/hub.md is the guide; tests/test_hub.py starts the hub with this very file. Everything a
machine may need to change is an environment variable, read once below:

INTERPLAB_HUB_STUDENTS, INTERPLAB_HUB_INSTRUCTORS  Unix user names, comma-separated: who may log in
                          (with their Unix password, through PAM)
INTERPLAB_HUB_ADMINS      hub administrators (may start and stop others' servers); default none
INTERPLAB_EXCHANGE        nbgrader's exchange folder; default /srv/nbgrader/exchange
INTERPLAB_WORK            the instructors' nbgrader course folder (gradebook, release, collected,
                          autograded, feedback); default the course's autograder/workspace
INTERPLAB_HUB_URL         the address students open; default http://:8000 (all interfaces)
INTERPLAB_HUB_API_URL     where the hub listens for the proxy and the servers; default http://127.0.0.1:8081
INTERPLAB_PROXY_API_URL   the proxy's own API; default http://127.0.0.1:8001
INTERPLAB_HUB_STATE       the hub's database, cookie secret and proxy pid file; default /srv/jupyterhub
INTERPLAB_CHP             the configurable-http-proxy command; default the one `make install` puts
                          beside this environment (.venv/hub/), else the one on PATH
"""

import os
import shutil
import sys
from pathlib import Path

c = get_config()  # noqa: F821 (provided by JupyterHub when it loads this file)

HERE = Path(__file__).resolve().parent


def _names(variable: str) -> set[str]:
    return {name.strip() for name in os.environ.get(variable, "").split(",") if name.strip()}


STUDENTS = _names("INTERPLAB_HUB_STUDENTS")
INSTRUCTORS = _names("INTERPLAB_HUB_INSTRUCTORS")
EXCHANGE = os.environ.get("INTERPLAB_EXCHANGE", "/srv/nbgrader/exchange")
STATE = Path(os.environ.get("INTERPLAB_HUB_STATE", "/srv/jupyterhub"))
if not STUDENTS | INSTRUCTORS:
    raise SystemExit("jupyterhub_config.py: nobody may log in: set INTERPLAB_HUB_STUDENTS and INTERPLAB_HUB_INSTRUCTORS "
                     "to comma-separated Unix user names")


def _proxy() -> str:
    """The proxy `make install` put into this environment (npm install --prefix .venv/hub), or one on PATH."""
    chosen = os.environ.get("INTERPLAB_CHP")
    local = Path(sys.prefix) / "hub" / "node_modules" / ".bin" / "configurable-http-proxy"
    found = chosen or (str(local) if local.exists() else shutil.which("configurable-http-proxy"))
    if not found:
        raise SystemExit("jupyterhub_config.py: configurable-http-proxy is not installed: install Node.js 18 or "
                         f"later (it brings npm), then run `make install` in the course (it installs the proxy into "
                         f"{local.parents[2]}), or set INTERPLAB_CHP to the path of one you have")
    return found


# --- the hub and its proxy -------------------------------------------------------------------------------------
c.JupyterHub.bind_url = os.environ.get("INTERPLAB_HUB_URL", "http://:8000")
c.JupyterHub.hub_bind_url = os.environ.get("INTERPLAB_HUB_API_URL", "http://127.0.0.1:8081")
c.ConfigurableHTTPProxy.api_url = os.environ.get("INTERPLAB_PROXY_API_URL", "http://127.0.0.1:8001")
c.ConfigurableHTTPProxy.command = [_proxy()]
STATE.mkdir(mode=0o700, parents=True, exist_ok=True)  # the cookie secret must stay root's
c.JupyterHub.db_url = f"sqlite:///{STATE / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(STATE / "jupyterhub_cookie_secret")
c.ConfigurableHTTPProxy.pid_file = str(STATE / "jupyterhub-proxy.pid")

# --- who may log in: Unix accounts, checked by PAM ---------------------------------------------------------------
c.JupyterHub.authenticator_class = "pam"
c.Authenticator.allowed_users = STUDENTS | INSTRUCTORS
c.Authenticator.admin_users = _names("INTERPLAB_HUB_ADMINS")

# --- each user's JupyterLab, run as that Unix user ----------------------------------------------------------------
c.JupyterHub.spawner_class = "localprocess"
# The server from this same environment: the course, nbgrader and its Assignments tab are all here.
c.Spawner.cmd = [str(Path(sys.executable).parent / "jupyterhub-singleuser")]
c.Spawner.default_url = "/lab"
c.Spawner.notebook_dir = "~"
# A loaded machine can take a minute to start a server that imports JupyterLab and nbgrader.
c.Spawner.start_timeout = c.Spawner.http_timeout = 180
c.Spawner.environment = {"INTERPLAB_EXCHANGE": EXCHANGE}
# Settings of the machine's own that the course reads (threads, offline mode, the CPU tier) reach the users too.
c.Spawner.env_keep.extend(["OMP_WAIT_POLICY", "OMP_NUM_THREADS", "TQDM_DISABLE", "HF_HUB_OFFLINE", "INTERPLAB_TIER"])


def _course_config(spawner) -> None:
    """Point each server's nbgrader at the course: students' at the exchange only (student/), instructors' at
    the course folder as well (instructor/), through the Jupyter configuration path that nbgrader reads."""
    instructor = spawner.user.name in INSTRUCTORS
    spawner.environment["JUPYTER_CONFIG_PATH"] = str(HERE / ("instructor" if instructor else "student"))
    if instructor and os.environ.get("INTERPLAB_WORK"):
        spawner.environment["INTERPLAB_WORK"] = os.environ["INTERPLAB_WORK"]


c.Spawner.pre_spawn_hook = _course_config
