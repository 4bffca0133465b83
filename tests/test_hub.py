"""A term of the course on a real JupyterHub with nbgrader's exchange, as docs/hub.md sets it up.

The end-to-end test starts JupyterHub (autograder/hub/jupyterhub_config.py, the file the guide points
to) on 127.0.0.1 with its proxy from npm (``make install`` puts it in .venv/hub/), PAM logins and
``LocalProcessSpawner``, for Unix users it creates: an instructor and three students. nbgrader's exchange
tells students apart by their Unix names, so each student's JupyterLab runs as that student and each
instructor command as the instructor. The loop is the guide's:

1. the instructor generates lab 02 from solutions/ and releases it (``nbgrader release_assignment``);
2. each student logs in through the hub in a headless Chromium, fetches the lab in the Assignments tab,
   writes answers into it (the contents API, as that user, with the browser's own session), opens it,
   validates and submits it in the Assignments tab: alice submits twice, carol submits a notebook that
   deletes a check cell and rewrites another, bob submits after the due date;
3. the instructor collects (``nbgrader collect``, then ``--update`` for the resubmission), grades the
   collected folder with ``interplab grade``, and releases feedback (``nbgrader generate_feedback``,
   ``nbgrader release_feedback``); each student fetches it in the Assignments tab.

carol also drops a submission of the untouched lab into the exchange under alice's name: collect leaves it
there and says so (autograder/hub/instructor/owner_checked_collect.py).

Then: one CSV row per student, alice's second version graded, bob late in the gradebook and the CSV,
carol's deleted check restored and said so; each student can read their own feedback and nobody else's files. Everything
the test starts it stops, and the users, their files and the exchange go, whatever happened.

The unit tests at the top need no hub: they grade the layout ``nbgrader collect`` leaves.
"""

from __future__ import annotations

import csv
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import nbformat
import pytest
from browser import CHROMIUM_ARGS, free_port
from course import LAB, RELEASED, ROOT, completed_lab, read
from hostile import FULL

from interplab.exercises import get_lab
from interplab.grading import grade as grading
from interplab.grading.grade import Settings, discover, exchange_files

SPEC = get_lab(LAB)
NOTEBOOK = f"{SPEC.notebook}.ipynb"
HUB_CONFIG = ROOT / "autograder" / "hub" / "jupyterhub_config.py"
INSTRUCTOR_CONFIG = ROOT / "autograder" / "hub" / "instructor"
BIN = Path(sys.executable).parent
#: Where `make install` puts JupyterHub's proxy (the hub config's default too).
PROXY = Path(sys.prefix) / "hub" / "node_modules" / ".bin" / "configurable-http-proxy"
TIMESTAMP = "2026-03-02 10:15:00.123456 UTC"
#: Any address but this machine's own.
OUTSIDE = re.compile(r"^(?!(https?|wss?)://(127\.0\.0\.1|localhost)[:/]|data:|blob:|about:)")
#: The "Open in Colab" badge at the top of each lab (interplab.colab): an image that the student's browser asks
#: for, as it would for any image in a notebook; the only outside address the test lets the browser ask for.
COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"


# --- the layout nbgrader collect leaves, graded without a hub -------------------------------------------------------

def collected(folder: Path, student: str, notebook: nbformat.NotebookNode, timestamp: str = TIMESTAMP) -> Path:
    """``folder/<student>/<lab>/`` as ``nbgrader collect`` writes it: the notebook, timestamp.txt, the secret."""
    where = folder / student / LAB
    where.mkdir(parents=True)
    nbformat.write(notebook, str(where / NOTEBOOK))
    (where / "timestamp.txt").write_text(timestamp)
    (where / "submission_secret.txt").write_text(secrets.token_hex(32))
    return where


def test_discover_finds_each_students_lab_in_what_nbgrader_collected(tmp_path):
    collected(tmp_path, "alice", read(RELEASED))
    other = tmp_path / "alice" / "01_features"  # her submission of another lab, collected beside it
    other.mkdir()
    nbformat.write(read(ROOT / "labs" / "01_features" / f"{get_lab('01_features').notebook}.ipynb"),
                   str(other / f"{get_lab('01_features').notebook}.ipynb"))
    collected(tmp_path, "bob", read(RELEASED))
    (tmp_path / "carol" / "01_features").mkdir(parents=True)  # collected for another lab only
    nbformat.write(read(RELEASED), str(tmp_path / "dave.ipynb"))  # the older layouts still work beside it
    (tmp_path / "erin").mkdir()
    nbformat.write(read(RELEASED), str(tmp_path / "erin" / NOTEBOOK))

    found = discover(tmp_path, SPEC.notebook)
    assert found["alice"] == tmp_path / "alice" / LAB / NOTEBOOK
    assert found["bob"] == tmp_path / "bob" / LAB / NOTEBOOK
    assert found["dave"] == tmp_path / "dave.ipynb" and found["erin"] == tmp_path / "erin" / NOTEBOOK
    assert isinstance(found["carol"], str) and f"carol/<lab>/" in found["carol"] and "found 0" in found["carol"]


def test_exchange_files_come_only_from_the_students_own_folder_and_only_when_readable(tmp_path):
    where = collected(tmp_path, "alice", read(RELEASED))
    kept, notes = exchange_files(where / NOTEBOOK, "alice", LAB)
    assert kept == {"timestamp.txt": TIMESTAMP, "submission_secret.txt": (where / "submission_secret.txt").read_text()}
    assert notes == []

    (tmp_path / "timestamp.txt").write_text(TIMESTAMP)  # beside SUBMISSIONS/<student>.ipynb it is nobody's own
    nbformat.write(read(RELEASED), str(tmp_path / "bob.ipynb"))
    assert exchange_files(tmp_path / "bob.ipynb", "bob", LAB) == ({}, [])

    (where / "timestamp.txt").write_text("yesterday-ish")
    (where / "submission_secret.txt").unlink()
    (where / "submission_secret.txt").symlink_to(tmp_path / "timestamp.txt")
    kept, notes = exchange_files(where / NOTEBOOK, "alice", LAB)
    assert kept == {}
    assert [note.split(" (")[0] for note in notes] == ["ignored the submission's unreadable timestamp.txt",
                                                       "ignored the submission's unreadable submission_secret.txt"]


class RefusingApi:
    """An nbgrader API whose autograde fails at once: enough to see what the copy step left for nbgrader."""

    def autograde(self, *args, **kwargs) -> dict:
        return {"success": False, "error": "stopped here by the test", "log": ""}


def test_grading_copies_the_timestamp_and_secret_where_nbgrader_autograde_reads_them(tmp_path):
    where = collected(tmp_path / "collected", "alice", completed_lab())
    work = tmp_path / "work"
    settings = Settings(ROOT, LAB, work)
    row = grading._grade_one(RefusingApi(), SPEC, settings, read(RELEASED), "alice", discover(where.parents[1],
                                                                                              SPEC.notebook)["alice"])
    assert "stopped here by the test" in row.status
    target = work / "submitted" / "alice" / LAB
    assert (target / "timestamp.txt").read_text() == TIMESTAMP
    assert (target / "submission_secret.txt").read_text() == (where / "submission_secret.txt").read_text()
    assert (target / NOTEBOOK).is_file()
    assert read(where / NOTEBOOK) == completed_lab()  # the collected original is as it came


def test_the_grade_command_refuses_to_grade_the_folder_it_writes_into(tmp_path, capsys):
    from interplab.cli import main

    work = tmp_path / "work"
    (work / "submitted").mkdir(parents=True)
    assert main(["--course", str(ROOT), "grade", LAB, str(work / "submitted"), "--work", str(work)]) == 2
    assert "collect the submissions elsewhere" in capsys.readouterr().err


# --- the machine: tools, Unix users, the exchange, the hub ------------------------------------------------------------

def require_hub_tools() -> str:
    """The system's Chromium, once every tool the hub test needs is here. Otherwise, in CI (``CI`` set, as
    ``.ci/run`` sets it, after installing them) a failure, elsewhere a skip, saying what is missing and how
    to get it."""
    problems = []
    if os.geteuid() != 0:
        problems.append("run the test as root: it creates Unix users, and the hub starts each user's server as that user")
    for tool in ("useradd", "userdel", "chpasswd"):
        if not shutil.which(tool):
            problems.append(f"{tool} is missing (Debian: apt-get install passwd)")
    if not (BIN / "jupyterhub").is_file():
        problems.append(f"jupyterhub is missing from {BIN}: run `make install` (the dev extra includes the hub extra)")
    if not PROXY.is_file():
        problems.append(f"configurable-http-proxy is missing from {PROXY.parents[2]}: install Node.js 18 or later "
                        "(it brings npm; Debian: apt-get install nodejs npm), then run `make install`")
    from browser import chromium

    try:
        executable = chromium()
    except pytest.skip.Exception as missing:
        problems.append(str(missing))
        executable = ""
    if problems:
        message = "the JupyterHub test cannot run here:\n  " + "\n  ".join(problems)
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return executable


@dataclass(frozen=True)
class Account:
    """A Unix user the test made: the hub logs them in with this password (PAM)."""

    role: str
    name: str
    password: str
    uid: int
    gid: int
    home: Path


def create_account(role: str, tag: str) -> Account:
    """A Unix user with a private home (0700, so classmates cannot read each other's work) and a password."""
    name = f"ihub{tag}-{role}"
    subprocess.run(["useradd", "--create-home", "--key", "HOME_MODE=0700", "--shell", "/bin/bash",
                    "--comment", "interplab hub test", name], check=True, capture_output=True, text=True)
    password = secrets.token_urlsafe(18)
    subprocess.run(["chpasswd"], input=f"{name}:{password}\n", check=True, capture_output=True, text=True)
    entry = pwd.getpwnam(name)
    return Account(role, name, password, entry.pw_uid, entry.pw_gid, Path(entry.pw_dir))


def processes_of(uid: int) -> list[int]:
    """The ids of the processes running as ``uid`` (its real user)."""
    pids = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            uids = next(line for line in status.read_text().splitlines() if line.startswith("Uid:")).split()
        except (OSError, StopIteration):
            continue  # gone meanwhile
        if int(uids[1]) == uid:
            pids.append(int(status.parent.name))
    return pids


def remove_account(account: Account) -> None:
    """Stop what still runs as the user (one process at a time, each one this test started through the hub),
    remove what they left in the shared temporary folders, then the user and their home."""
    deadline = time.monotonic() + 30
    while (pids := processes_of(account.uid)) and time.monotonic() < deadline:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.2)
    for shared in ("/tmp", "/var/tmp", "/dev/shm"):
        found = subprocess.run(["find", shared, "-xdev", "-mindepth", "1", "-uid", str(account.uid), "-prune", "-print0"],
                               capture_output=True, text=True).stdout
        for path in filter(None, found.split("\0")):
            subprocess.run(["rm", "-rf", "--one-file-system", "--", path], check=False)
    subprocess.run(["userdel", "--remove", account.name], capture_output=True, text=True)
    if any(entry.pw_name == account.name for entry in pwd.getpwall()):
        raise RuntimeError(f"could not remove the test's user {account.name}: remove it with userdel --remove")


def run_as(account: Account, args: list[str], cwd: Path | None = None, env: dict[str, str] | None = None,
           timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess:
    """``args`` run as ``account``, in a login-like environment (no root's variables), the course's tools first
    on PATH; a failure shows what the command printed."""
    environment = {"HOME": str(account.home), "USER": account.name, "LOGNAME": account.name, "LANG": "C.UTF-8",
                   "PATH": f"{BIN}:/usr/local/bin:/usr/bin:/bin", **QUIET, **(env or {})}
    result = subprocess.run([str(a) for a in args], user=account.uid, group=account.gid, extra_groups=[],
                            cwd=cwd or account.home, env=environment, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode:
        raise AssertionError(f"`{' '.join(map(str, args))}` as {account.name} failed ({result.returncode}):\n"
                             f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    return result


#: What the machine's own processes read: one passive thread (two shared cores), no downloads, the CPU tier.
QUIET = {"OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1", "HF_HUB_OFFLINE": "1",
         "INTERPLAB_TIER": "cpu"}


@contextmanager
def traversable_for_everyone(*paths: Path) -> Iterator[list[Path]]:
    """Every folder above ``paths`` that other users may not pass through (``/root``, above the Python that
    .venv was made from, on most of our machines), made passable (o+x, never readable) while the hub runs,
    and put back as it was. Users' servers run the course's own environment, as docs/hub.md's do."""
    changed: dict[Path, int] = {}
    try:
        for path in paths:
            for folder in [*reversed(Path(path).resolve().parents), Path(path).resolve()]:
                mode = folder.stat().st_mode
                if folder not in changed and not mode & stat.S_IXOTH:
                    changed[folder] = stat.S_IMODE(mode)
                    folder.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)
        yield list(changed)
    finally:
        for folder, mode in changed.items():
            folder.chmod(mode)


def wait_for(url: str, process: subprocess.Popen, log: Path, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            urllib.request.urlopen(url, timeout=5)
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"JupyterHub did not start (exit {process.poll()}); its log:\n{log.read_text()[-4000:]}")
            time.sleep(0.5)


@contextmanager
def jupyterhub(state: Path, exchange: Path, instructor: Account, students: list[Account], work: Path) -> Iterator[str]:
    """JupyterHub as docs/hub.md starts it, on free ports of 127.0.0.1; yields its URL. Stopping it stops the
    proxy and every user's server (JupyterHub's cleanup), and whatever of theirs is left is stopped after."""
    port = free_port()
    log = state / "jupyterhub.log"
    env = {**os.environ, **QUIET, "PATH": f"{BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}",
           "INTERPLAB_HUB_STUDENTS": ",".join(s.name for s in students), "INTERPLAB_HUB_INSTRUCTORS": instructor.name,
           "INTERPLAB_EXCHANGE": str(exchange), "INTERPLAB_WORK": str(work), "INTERPLAB_HUB_STATE": str(state),
           "INTERPLAB_HUB_URL": f"http://127.0.0.1:{port}", "INTERPLAB_HUB_API_URL": f"http://127.0.0.1:{free_port()}",
           "INTERPLAB_PROXY_API_URL": f"http://127.0.0.1:{free_port()}"}
    with log.open("w") as out:
        hub = subprocess.Popen([BIN / "jupyterhub", "-f", HUB_CONFIG], cwd=state, env=env, stdout=out,
                               stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{url}/hub/api/", hub, log)
        yield url
    finally:
        hub.send_signal(signal.SIGTERM)  # JupyterHub stops the users' servers and its proxy on its way out
        try:
            hub.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(hub.pid, signal.SIGKILL)
            hub.wait()
        pid_file = state / "jupyterhub-proxy.pid"  # still there only if the hub could not stop its proxy
        if pid_file.is_file():
            pid = pid_file.read_text().strip()
            command = Path(f"/proc/{pid}/cmdline")
            if pid.isdigit() and command.exists() and b"configurable-http-proxy" in command.read_bytes():
                os.kill(int(pid), signal.SIGKILL)


# --- a student in the browser: JupyterLab's Assignments tab, through the hub ------------------------------------------

class Student:
    """One student in a browser context of their own (their own cookies), doing what students do on the hub."""

    def __init__(self, browser, hub: str, account: Account, outside: list[str]):
        self.account, self.hub = account, hub
        self.context = browser.new_context(viewport={"width": 1400, "height": 1000})
        # Nothing but this machine: any request elsewhere is kept, and the test fails on it (but for the labs'
        # own Colab badge); none leaves the machine (it is stopped here, and the browser resolves no name).
        self.context.on("request", lambda request: outside.append(request.url) if OUTSIDE.match(request.url) else None)
        self.context.route(OUTSIDE, lambda route: route.abort("blockedbyclient"))
        self.page = self.context.new_page()
        self.page.set_default_timeout(180_000)
        # The test writes a student's lab through the contents API while JupyterLab has it open; JupyterLab then
        # asks, whenever it next saves, whether to overwrite the file or load it (on a loaded machine, in the middle
        # of a later click). A student who edited elsewhere loads it: Revert, whenever the dialog shows.
        changed = self.page.locator(".jp-Dialog", has_text="has changed on disk")
        self.page.add_locator_handler(changed, lambda dialog: dialog.locator(
            ".jp-Dialog-button", has_text="Revert").click())
        self.server = f"{hub}/user/{account.name}"

    @property
    def lab_folder(self) -> str:
        """Where nbgrader's fetch puts the lab, in the student's home (Exchange.path_includes_course)."""
        return f"interplab/{LAB}"

    def log_in(self) -> None:
        """The hub's login form, with the Unix password; the hub starts the student's server and opens JupyterLab."""
        self.page.goto(f"{self.hub}/hub/login")
        self.page.fill("#username_input", self.account.name)
        self.page.fill("#password_input", self.account.password)
        self.page.click("#login_submit")
        self.page.wait_for_url(f"**/user/{self.account.name}/lab**")
        self.page.locator("#jp-main-dock-panel").wait_for()

    def assignments(self):
        """The Assignments tab (menu Nbgrader ▸ Assignment List), opened once, brought to the front each time."""
        tab = self.page.locator(".lm-TabBar-tab", has_text=re.compile(r"^Assignments$"))
        if tab.count():
            tab.first.click()
        else:
            self.page.locator(".lm-MenuBar-itemLabel", has_text="Nbgrader").click()
            self.page.locator(".lm-Menu-itemLabel", has_text="Assignment List").click()
        panel = self.page.locator("#assignments")
        panel.locator("#released_assignments_list_loading").wait_for(state="hidden")
        return panel

    def fetch(self) -> None:
        panel = self.assignments()
        panel.locator("#released_assignments_list .list_item", has_text=LAB).locator("button", has_text="Fetch").click()
        panel.locator("#fetched_assignments_list .list_item", has_text=LAB).first.wait_for()

    def write(self, notebook: nbformat.NotebookNode) -> None:
        """Save ``notebook`` as the student's lab: the contents API of their server, through the hub, with the
        browser's own session (its cookie, and the XSRF token JupyterLab itself sends)."""
        xsrf = next(c["value"] for c in self.context.cookies()
                    if c["name"] == "_xsrf" and c["path"].startswith(f"/user/{self.account.name}"))
        body = {"type": "notebook", "format": "json", "content": json.loads(nbformat.writes(notebook))}
        response = self.page.request.put(f"{self.server}/api/contents/{self.lab_folder}/{NOTEBOOK}", data=json.dumps(body),
                                         headers={"X-XSRFToken": xsrf, "Content-Type": "application/json"})
        assert response.ok, f"saving {self.account.name}'s lab failed: {response.status} {response.text()[:500]}"

    def open_notebook(self) -> None:
        """Open the lab from the Assignments tab, as a student does, and see their answers in it."""
        fetched = self.assignments().locator("#fetched_assignments_list")
        notebooks = fetched.locator(".nested_list_item a", has_text=SPEC.notebook)
        if not notebooks.first.is_visible():
            fetched.locator("a.assignment-notebooks-link", has_text=LAB).click()
        notebooks.first.click()
        self.page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for()

    def validate(self) -> str:
        """Validate in the Assignments tab (nbgrader runs the notebook as the student); what its dialog says."""
        fetched = self.assignments().locator("#fetched_assignments_list")
        row = fetched.locator(".nested_list_item", has_text=SPEC.notebook)
        if not row.first.is_visible():
            fetched.locator("a.assignment-notebooks-link", has_text=LAB).click()
        row.first.locator("button", has_text="Validate").click()
        dialog = self.page.locator(".jp-Dialog", has_not_text="has changed on disk")
        dialog.wait_for(timeout=600_000)
        said = dialog.inner_text()
        dialog.locator(".jp-Dialog-button.jp-mod-accept").click()
        dialog.wait_for(state="detached")
        return said

    def submissions(self) -> list[str]:
        """The timestamps the Assignments tab lists under the lab's submissions."""
        listed = self.assignments().locator(f"#nbgrader-interplab-{LAB}-submissions .nested_list_item .item_name")
        return [t.strip() for t in listed.all_inner_texts()]

    def submit(self) -> str:
        """Submit in the Assignments tab; the new submission's timestamp, once the tab lists it."""
        before = self.submissions()
        self.assignments().locator("#fetched_assignments_list .list_item", has_text=LAB).locator(
            "button", has_text="Submit").first.click()
        deadline = time.monotonic() + 120
        while len(after := self.submissions()) <= len(before):
            assert time.monotonic() < deadline, f"{self.account.name}'s submission never appeared (listed: {after})"
            self.page.wait_for_timeout(500)
        return next(t for t in after if t not in before)

    def fetch_feedback(self) -> None:
        self.assignments().locator("#submitted_assignments_list .list_item", has_text=LAB).locator(
            "button", has_text="Fetch Feedback").first.click()
        self.page.wait_for_timeout(500)
        self.assignments()



# --- the term -------------------------------------------------------------------------------------------------------

@dataclass
class Term:
    """What the term's test works with: the hub, its users, nbgrader's exchange and the instructor's course folder."""

    hub: str
    exchange: Path
    work: Path
    instructor: Account
    students: dict[str, Account]  # by role: alice resubmits, bob is late, carol tampers
    browser: object
    outside: list[str]  # every request the browsers made to anywhere but this machine

    def nbgrader(self, *args: str) -> str:
        """An nbgrader command as the instructor, from autograder/hub/instructor/ as docs/hub.md runs them
        (its nbgrader_config.py is the course on the hub); what it printed."""
        done = run_as(self.instructor, [BIN / "nbgrader", *args], cwd=INSTRUCTOR_CONFIG, env=self.instructor_env)
        return done.stdout + done.stderr

    @property
    def instructor_env(self) -> dict[str, str]:
        return {"INTERPLAB_WORK": str(self.work), "INTERPLAB_EXCHANGE": str(self.exchange)}

    def student(self, role: str) -> Student:
        return Student(self.browser, self.hub, self.students[role], self.outside)


def no_news_question(account: Account) -> None:
    """JupyterLab asks each new user whether to fetch news, over the page; answer it in their settings, as
    tests/browser.py does (the hub's servers fetch none anyway: autograder/hub/student/jupyter_server_config.py)."""
    run_as(account, ["sh", "-c", 'd="$HOME/.jupyter/lab/user-settings/@jupyterlab/apputils-extension" && mkdir -p "$d" '
                     '&& printf \'{"fetchNews": "false"}\' > "$d/notification.jupyterlab-settings"'])


@pytest.fixture(scope="module")
def term() -> Iterator[Term]:
    """A hub with an instructor and three students, all made for this test, and all removed after it: the
    browser closes, the hub stops (and with it the proxy and every user's server), what the users still run
    is stopped, the users and their homes go, then the exchange; /root's mode is put back."""
    executable = require_hub_tools()
    from playwright.sync_api import sync_playwright

    shared = (Path(sys.base_prefix), ROOT / ".venv")
    modes = folder_modes(shared)
    made: list[Account] = []
    with ExitStack() as stack:
        base = Path(tempfile.mkdtemp(prefix="interplab-hub-"))
        stack.callback(shutil.rmtree, base, ignore_errors=True)
        base.chmod(0o755)
        exchange = base / "exchange"  # as docs/hub.md makes /srv/nbgrader/exchange: everyone may write
        exchange.mkdir()
        exchange.chmod(0o777)
        state = base / "hub"
        state.mkdir(mode=0o700)
        tag = secrets.token_hex(2)
        accounts = {}
        for role in ("teacher", "alice", "bob", "carol"):
            accounts[role] = create_account(role, tag)
            made.append(accounts[role])
            stack.callback(remove_account, accounts[role])
        instructor = accounts.pop("teacher")
        for account in accounts.values():
            no_news_question(account)
        work = instructor.home / "course"
        stack.enter_context(traversable_for_everyone(*shared))
        hub = stack.enter_context(jupyterhub(state, exchange, instructor, list(accounts.values()), work))
        playwright = stack.enter_context(sync_playwright())
        browser = playwright.chromium.launch(executable_path=executable, args=[
            *CHROMIUM_ARGS, "--disable-background-networking", "--disable-component-update", "--no-first-run",
            "--disable-sync", "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1"])
        stack.callback(browser.close)
        yield Term(hub, exchange, work, instructor, accounts, browser, [])
    left = leftovers(base, made, hub)
    assert folder_modes(shared) == modes, "the folders above the course's Python did not get their modes back"
    assert left == [], f"the hub test left these behind: {left}"


def folder_modes(paths) -> dict[Path, int]:
    """The mode of each of ``paths`` and of every folder above them."""
    return {folder: folder.stat().st_mode for path in paths
            for folder in [Path(path).resolve(), *Path(path).resolve().parents]}


def leftovers(base: Path, accounts: list[Account], hub: str) -> list[str]:
    """What of the term is still on the machine once it is over: its folder (exchange, the hub's state), a
    user, their home, processes or files in the shared temporary folders, a hub or proxy still answering."""
    left = [f"the folder {base}"] if base.exists() else []
    for account in accounts:
        if any(entry.pw_name == account.name for entry in pwd.getpwall()):
            left.append(f"the user {account.name}")
        if account.home.exists():
            left.append(f"the home of {account.name}")
        left += [f"process {pid} of {account.name}" for pid in processes_of(account.uid)]
        for folder in ("/tmp", "/var/tmp", "/dev/shm"):
            found = subprocess.run(["find", folder, "-xdev", "-mindepth", "1", "-uid", str(account.uid), "-print"],
                                   capture_output=True, text=True).stdout.split()
            left += [f"{path} of {account.name}" for path in found]
    try:
        urllib.request.urlopen(f"{hub}/hub/api/", timeout=5)
        left.append(f"the hub (or its proxy) at {hub}")
    except OSError:
        pass
    return left


def forge(forger: Account, victim: Account, exchange: Path) -> Path:
    """A submission of the untouched lab that ``forger`` writes straight into the exchange's inbound folder
    (everyone may write there) under ``victim``'s name and the current time, as nbgrader's submit names them."""
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f UTC")
    folder = exchange / "interplab" / "inbound" / f"{victim.name}+{LAB}+{now}+{secrets.token_hex(16)}"
    run_as(forger, ["sh", "-c", 'mkdir "$1" && cp "$2" "$1/" && printf %s "$3" > "$1/timestamp.txt"', "forge",
                    folder, RELEASED, now])
    return folder


def tampered() -> nbformat.NotebookNode:
    """carol's lab: every answer right, but one check cell deleted and another rewritten to pass by itself."""
    nb = completed_lab()
    nb.cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") != DELETED]
    rewritten = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == REWRITTEN)
    rewritten.source = 'print("✅ correct on all cases.")'
    return nb


DELETED, REWRITTEN = "check_ov_top1_accuracy", "check_repeated_tokens"
#: Reads every file below each folder it is given that this user can open; prints their paths (JSON).
READABLE = """
import json, os, sys
readable = []
for top in sys.argv[1:]:
    for folder, _, files in os.walk(top):
        for name in files:
            try:
                with open(os.path.join(folder, name), "rb"):
                    readable.append(os.path.join(folder, name))
            except OSError:
                pass
print(json.dumps(sorted(readable)))
"""


def test_a_term_on_jupyterhub_release_submit_collect_grade_and_feedback(term):
    started = time.monotonic()

    def step(what: str) -> None:
        print(f"[{time.monotonic() - started:6.1f} s] {what}", flush=True)

    step("the instructor generates lab 02 from solutions/ and releases it to the exchange")
    term.nbgrader("generate_assignment", LAB, "--force")
    term.nbgrader("release_assignment", LAB)
    alice, bob, carol = (term.student(role) for role in ("alice", "bob", "carol"))
    for student in (alice, carol, bob):
        step(f"{student.account.name} logs in and fetches the lab in the Assignments tab")
        student.log_in()
        student.fetch()

    step("alice submits the lab as fetched; carol validates and submits a tampered one; the instructor collects")
    alice.open_notebook()
    first = alice.submit()
    carol.write(tampered())
    carol.open_notebook()
    said = carol.validate()
    step(f"carol's validation: {said!r}")
    carol.submit()
    term.nbgrader("collect", LAB)
    collected = term.work / "collected"
    assert (collected / alice.account.name / LAB / "timestamp.txt").read_text() == first

    step("alice resubmits it complete, validated; the lab falls due; bob submits after that")
    alice.write(completed_lab())
    alice.open_notebook()
    assert "Success! Your notebook passes all the tests." in alice.validate()
    second = alice.submit()
    due = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f UTC")
    term.nbgrader("db", "assignment", "add", LAB, f"--duedate={due}")
    bob.write(completed_lab())
    bob.open_notebook()
    assert "Success! Your notebook passes all the tests." in bob.validate()
    late = bob.submit()
    assert first < second < due < late, (first, second, due, late)
    forged = forge(carol.account, alice.account, term.exchange)
    said = term.nbgrader("collect", "--update", LAB)
    assert f"not collected: {forged} claims to be {alice.account.name}'s submission, but {carol.account.name} made it" \
        in said, said
    assert (collected / alice.account.name / LAB / "timestamp.txt").read_text() == second  # her own, not carol's
    assert forged.is_dir()

    step("the instructor grades what was collected with interplab grade")
    out = term.work / "grades.csv"
    graded = run_as(term.instructor, [BIN / "interplab", "--course", ROOT, "grade", LAB, collected, "--work", term.work,
                                      "--out", out, "--workers", "2", "--no-feedback"], env=term.instructor_env)
    step(graded.stdout.strip())
    rows = list(csv.DictReader(out.open()))
    names = {role: account.name for role, account in term.students.items()}
    assert sorted(row["student"] for row in rows) == sorted(names.values())  # each student once
    row = {role: next(r for r in rows if r["student"] == name) for role, name in names.items()}
    assert float(row["alice"]["total"]) == FULL and row["alice"]["status"] == "graded"  # her second version
    assert float(row["bob"]["total"]) == FULL  # nbgrader's default late penalty is none
    assert re.fullmatch(r"graded; submitted late, \d+:\d\d:\d\d \(h:mm:ss\) after the due date", row["bob"]["status"])
    assert float(row["carol"]["total"]) == FULL  # the check comes back, and nbgrader restores the rewritten one
    assert f"restored deleted cell {DELETED}" in row["carol"]["status"]
    from nbgrader.api import Gradebook
    from nbgrader.utils import parse_utc

    with Gradebook(f"sqlite:///{term.work / 'gradebook.db'}", course_id="interplab") as gradebook:
        submissions = {role: gradebook.find_submission(LAB, name) for role, name in names.items()}
        late_by = {role: s.total_seconds_late for role, s in submissions.items()}
        assert submissions["alice"].timestamp == parse_utc(second) and submissions["bob"].timestamp == parse_utc(late)
    assert late_by["bob"] > 0 and late_by["alice"] == late_by["carol"] == 0, late_by

    step("the instructor generates and releases feedback; each student fetches theirs in the Assignments tab")
    term.nbgrader("generate_feedback", LAB)
    term.nbgrader("release_feedback", LAB)
    outbound = term.exchange / "interplab" / "outbound" / LAB
    released = sorted(str(p) for p in outbound.rglob("*") if p.is_file())
    for role, student in (("alice", alice), ("bob", bob), ("carol", carol)):
        student.fetch_feedback()
        fetched = sorted((student.account.home / student.lab_folder / "feedback").glob(f"*/{SPEC.notebook}.html"))
        own = term.work / "feedback" / names[role] / LAB / f"{SPEC.notebook}.html"
        assert [p.read_bytes() for p in fetched] == [own.read_bytes()], (role, fetched)
        others = [term.instructor, *(a for r, a in term.students.items() if r != role)]
        readable = json.loads(run_as(student.account, [BIN / "python", "-c", READABLE, term.exchange,
                                                       *(a.home for a in others)]).stdout)
        assert readable == released, f"{role} can read more than the released lab: {set(readable) - set(released)}"
    assert any(COLAB_BADGE in "".join(cell.source) for cell in read(RELEASED).cells)
    beyond = [url for url in term.outside if url != COLAB_BADGE]
    assert beyond == [], f"the browsers asked for addresses beyond this machine: {beyond[:5]}"
    step("done")
