"""Grading a class full of hostile and broken submissions (``tests/hostile.py``).

One batch is graded once (module fixture) by ``interplab grade`` as an instructor runs it, two
workers, small limits: every submission of the corpus, an honest complete one (alice), an honest
untouched one (bob), and two more copies of one submission to show grading is deterministic.
While it runs, a listener on the host's loopback waits for connections that must never come,
and a stand-in for the out-of-memory killer kills the grading worker of one submission each
time it runs. Each test then reads the CSV (with Python's csv module and pandas), the console
output, the gradebook, the feedback (in a browser too) and the host's process table.
"""

from __future__ import annotations

import copy
import csv
import hashlib
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
import torch
from course import LAB, RELEASED, ROOT, completed_lab, read
from hostile import (ATTACKER, CORPUS, DAEMON_NAME, DAEMON_SLEEP, EXERCISES, FORK_BOMB_NAME, FULL, HONEST_HTML,
                     HONEST_TEXT, POINTS, PWNED, VICTIM_NAME, Hostile, Target, named)

from interplab.answers import AnswerError, Case, load_cases, save_cases
from interplab.grading.grade import MAX_DETAILS_CHARS, MAX_STATUS_CHARS, Row
from interplab.grading.repair import repair
from interplab.grading.sandbox import FIRST_UID, Limits, Sandbox, claim_uid
from interplab.judge import STRONG, WEAK, copy_evidence

GiB, MiB = 1024**3, 1024**2
#: Small limits keep this fast, but a cell still needs time for the lab's imports on a loaded machine
#: (over 60 s with ten engineers' work on two cores), and a notebook time for a 120 s loop beside them.
#: The honest lab holds about 0.55 GB in all.
LIMITS = Limits(cell_seconds=120, notebook_seconds=360, memory_bytes=4 * GiB, memory_total_bytes=3 * GiB,
                disk_bytes=256 * MiB, tmp_bytes=128 * MiB)
#: The submission graded three times over (two extra copies), to show the scores are stable.
REPEATED = named("os-exit").student
COPIES = [f"{REPEATED}-copy{i}" for i in range(2, 4)]


class Listener:
    """TCP and UDP on the host's 127.0.0.1: whatever reaches it is kept in ``received``."""

    def __init__(self):
        self.tcp = socket.create_server(("127.0.0.1", 0))
        self.port = self.tcp.getsockname()[1]
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", self.port))
        self.received: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        while not self._stop.is_set():
            ready, _, _ = select.select([self.tcp, self.udp], [], [], 0.2)
            for sock in ready:
                if sock is self.tcp:
                    conn, peer = sock.accept()
                    with conn:
                        conn.settimeout(2)
                        try:
                            data = conn.recv(1024)
                        except OSError:
                            data = b""
                    self.received.append(f"tcp from {peer}: {data!r}")
                else:
                    data, peer = sock.recvfrom(1024)
                    self.received.append(f"udp from {peer}: {data!r}")

    def close(self):
        self._stop.set()
        self._thread.join()
        self.tcp.close()
        self.udp.close()


def _processes() -> list[str]:
    """``comm`` and command line of every process on the host."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                comm = (entry / "comm").read_text().strip()
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            found.append(f"{comm}: {cmdline}")
    return found


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class WorkerKiller:
    """A stand-in for the out-of-memory killer: whenever a process named ``VICTIM_NAME`` runs,
    SIGKILL the grading worker above it (the child of the ``interplab grade`` process)."""

    def __init__(self, grader_pid: int):
        self.grader_pid = grader_pid
        self.killed: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    @staticmethod
    def _parent(pid: int) -> int:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
        return int(stat[stat.rindex(b")") + 2:].split()[1])

    def _watch(self):
        while not self._stop.wait(0.5):
            for entry in Path("/proc").iterdir():
                try:
                    if not entry.name.isdigit() or (entry / "comm").read_text().strip() != VICTIM_NAME:
                        continue
                    pid = int(entry.name)
                    while (parent := self._parent(pid)) not in (self.grader_pid, 0, 1):
                        pid = parent
                    if parent == self.grader_pid and pid not in self.killed:
                        os.kill(pid, signal.SIGKILL)
                        self.killed.append(pid)
                except (OSError, ValueError):
                    continue

    def close(self):
        self._stop.set()
        self._thread.join()


def read_rows(path: Path) -> dict[str, Row]:
    """The grades CSV, read back with Python's csv module."""
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        return {r["student"]: Row(r["student"], {name: float(r[name]) for name in EXERCISES}, r["status"], r["details"])
                for r in reader}


@dataclass
class Graded:
    rows: dict[str, Row]
    target: Target
    received: list[str]
    leftovers: list[str]
    alice_before: str
    seconds: float
    console: str
    killed: list[int]

    @property
    def work(self) -> Path:
        return self.target.work

    @property
    def csv(self) -> Path:
        return self.work.parent / "grades.csv"

    def feedback_path(self, student: str) -> Path:
        return self.work / "feedback" / student / LAB / "induction_heads.html"

    def feedback(self, student: str) -> str:
        return self.feedback_path(student).read_text()


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> Graded:
    if Sandbox(LIMITS).problem:  # unsandboxed, a submission can read solutions/: nothing to test
        pytest.skip(f"the grading sandbox cannot start here ({Sandbox(LIMITS).problem})")
    tmp = tmp_path_factory.mktemp("hostile")
    subs = tmp / "submissions"
    subs.mkdir()
    listener = Listener()
    target = Target(root=ROOT, work=tmp / "work", submissions=subs, port=listener.port, marker=tmp / "unpickled")
    killer = None
    try:
        nbformat.write(completed_lab(), str(subs / "alice.ipynb"))
        shutil.copy(RELEASED, subs / "bob.ipynb")
        for hostile in CORPUS:
            built = hostile.build(target)
            path = subs / f"{hostile.student}.ipynb"
            if isinstance(built, bytes):
                path.write_bytes(built)
            else:
                nbformat.write(built, str(path))
        for name in COPIES:
            shutil.copy(subs / f"{REPEATED}.ipynb", subs / f"{name}.ipynb")
        alice_before = _sha(subs / "alice.ipynb")
        start = time.monotonic()
        command = [sys.executable, "-m", "interplab.cli", "--course", str(ROOT), "grade", LAB, str(subs),
                   "--out", str(tmp / "grades.csv"), "--work", str(target.work), "--workers", "2",
                   "--cell-timeout", str(LIMITS.cell_seconds), "--notebook-timeout", str(LIMITS.notebook_seconds),
                   "--process-memory", str(LIMITS.memory_bytes / GiB), "--memory", str(LIMITS.memory_total_bytes / GiB),
                   "--disk", str(LIMITS.disk_bytes // MiB), "--tmp", str(LIMITS.tmp_bytes // MiB)]
        with open(tmp / "console.txt", "w+") as console:
            proc = subprocess.Popen(command, stdout=console, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            killer = WorkerKiller(proc.pid)
            assert proc.wait(timeout=3600) == 0, (tmp / "console.txt").read_text()[-3000:]
        seconds = time.monotonic() - start
    finally:
        listener.close()
        if killer is not None:
            killer.close()
    leftovers = [p for p in _processes() if FORK_BOMB_NAME in p or DAEMON_NAME in p or f"sleep {DAEMON_SLEEP}" in p]
    print(f"graded {len(CORPUS) + 2 + len(COPIES)} submissions in {seconds:.0f} s")
    return Graded(read_rows(tmp / "grades.csv"), target, listener.received, leftovers, alice_before, seconds,
                  (tmp / "console.txt").read_text(), killer.killed)


def _row(graded: Graded, student: str) -> Row:
    return graded.rows[student]


def test_the_whole_batch_is_graded(graded):
    expected = {"alice", "bob", *(h.student for h in CORPUS), *COPIES}
    assert set(graded.rows) == expected
    with graded.csv.open() as f:
        assert len(f.read().splitlines()) == len(expected) + 1  # one line per student: no line breaks inside
    for row in graded.rows.values():
        assert "[NOT ISOLATED]" not in row.status and "the grader failed" not in row.status, row.status


def test_honest_students_beside_them_are_untouched(graded):
    alice, bob = graded.rows["alice"], graded.rows["bob"]
    assert alice.points == POINTS and alice.status == "graded" and alice.details == ""
    assert bob.total() == 0 and bob.status == "graded" and bob.details.count("not done yet") == len(POINTS)
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{graded.work / 'gradebook.db'}") as gb:
        assert gb.find_submission(LAB, "alice").score == FULL
        assert gb.find_submission(LAB, "bob").score == 0
    assert "correct on all" in graded.feedback("alice")


@pytest.mark.parametrize("hostile", CORPUS, ids=[h.student for h in CORPUS])
def test_no_marks_beyond_what_the_honest_code_earns(graded, hostile: Hostile):
    row = _row(graded, hostile.student)
    assert row.points == hostile.points, f"{hostile.what}: {row.status} | {row.details}"
    if not row.status.startswith("not graded"):
        from nbgrader.api import Gradebook

        with Gradebook(f"sqlite:///{graded.work / 'gradebook.db'}") as gb:  # what nbgrader export reports
            submission = gb.find_submission(LAB, hostile.student)
            assert submission.score == pytest.approx(sum(hostile.points.values()))
            assert submission.max_score == FULL


@pytest.mark.parametrize("hostile", CORPUS, ids=[h.student for h in CORPUS])
def test_each_verdict_says_why_in_the_csv_and_the_feedback(graded, hostile: Hostile):
    row = _row(graded, hostile.student)
    assert row.status.startswith(hostile.status), row.status
    if hostile.reason:
        assert hostile.reason in f"{row.status} | {row.details}"
    lost = [name for name, points in hostile.points.items() if points < POINTS[name]]
    if not row.status.startswith("not graded"):  # else the status alone says why
        for name in lost:  # every exercise that lost marks is named with its reason
            assert f"{name}: " in row.details, row.details
    if hostile.feedback:
        assert hostile.feedback in graded.feedback(hostile.student)
    if not lost and hostile.status == "graded":
        assert row.details == "", row.details


def test_nothing_reached_the_hosts_network(graded):
    assert graded.received == []


def test_no_planted_pickle_is_ever_unpickled(graded):
    assert not graded.target.marker.exists()


def test_the_gradebook_and_other_students_files_are_out_of_reach(graded):
    assert not (graded.work / "PWNED").exists()
    assert _sha(graded.target.submissions / "alice.ipynb") == graded.alice_before
    autograded = nbformat.read(str(graded.work / "autograded" / "alice" / LAB / "induction_heads.ipynb"), as_version=4)
    assert len(autograded.cells) > 10
    feedback = graded.feedback(named("gradebook").student)
    assert "PermissionError" in feedback or "FileNotFoundError" in feedback or "OperationalError" in feedback


def test_no_process_of_a_submission_outlives_its_run(graded):
    assert graded.leftovers == []


def test_huge_outputs_are_cut_in_bytes(graded):
    for hostile in (named("noisy-outputs"), named("forged-executed")):
        for folder in ("autograded", "feedback"):
            for path in (graded.work / folder / hostile.student / LAB).iterdir():
                assert path.stat().st_size < 2 * 1024**2, path
    path = graded.work / "autograded" / named("noisy-outputs").student / LAB / "induction_heads.ipynb"
    cells = {c.source: c.outputs for c in nbformat.read(str(path), as_version=4).cells if c.cell_type == "code"}
    for source in ('print("x" * 50_000_000)', "for i in range(1_000_000):\n    print(i)"):
        shown = str(cells[source])  # cut by us in bytes, then perhaps by nbgrader in lines
        assert len(shown) < 300_000 and ("[output cut" in shown or "Output truncated" in shown)


def test_a_notebook_that_never_ends_is_stopped_and_says_so(graded):
    row = graded.rows[named("swallow-interrupt").student]
    assert f"ran past its {LIMITS.notebook_seconds} s limit" in row.status


def test_the_runners_log_is_read_through_its_handle_not_a_planted_symlink(graded):
    row = graded.rows[named("forged-executed").student]  # its log was a symlink to the references' meta.json
    assert "killed by SIGKILL" in row.status
    assert '"seed"' not in row.status and '"public_seed"' not in row.status, row.status


def test_grading_one_submission_three_times_gives_identical_results(graded):
    first = graded.rows[REPEATED]
    assert first.total() > 0 and first.total() < FULL
    for name in COPIES:
        row = graded.rows[name]
        assert (row.points, row.details) == (first.points, first.details)


# -- the pieces behind some of the fixes, in process (no sandbox needed) ---------------------

def test_a_copy_of_the_public_reference_is_spotted_and_an_honest_answer_is_not():
    fixed, hidden, public = torch.ones(3), torch.tensor([1.0, 2.0]), torch.tensor([3.0, 4.0])
    reference, shown = [Case(fixed), Case(hidden)], [Case(fixed), Case(public)]
    assert copy_evidence([Case(fixed), Case(public)], reference, shown) == STRONG
    assert copy_evidence([Case(fixed.clone()), Case(public.double())], reference, shown) == STRONG  # retyped
    assert copy_evidence([Case(fixed), Case(hidden)], reference, shown) is None       # right on both
    assert copy_evidence([Case(fixed), Case(None, "ValueError")], reference, shown) is None
    assert copy_evidence([Case(fixed)] * 2, [Case(fixed)] * 2, [Case(fixed)] * 2) is None  # nothing differs
    # one value alike (a wrong accuracy of 0.0 where the public one is 0.0 too) proves little
    assert copy_evidence([Case(torch.tensor(0.0))], [Case(torch.tensor(0.25))], [Case(torch.tensor(0.0))]) == WEAK


@pytest.mark.parametrize("dtype", [torch.float8_e4m3fn, torch.complex64, torch.uint32])
def test_a_recording_of_an_odd_dtype_is_refused_not_crashing_the_grader(tmp_path, dtype):
    save_cases(tmp_path, "toy", [Case(torch.ones(2, 3).to(dtype))])
    with pytest.raises(AnswerError, match="dtype"):
        load_cases(tmp_path, "toy")


def test_grading_metadata_comes_from_the_release():
    release = read(RELEASED)
    nb = copy.deepcopy(release)
    answer = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "answer_prev_token_scores")
    answer.metadata.nbgrader.update(grade=True, points=50)
    bonus = nbformat.v4.new_code_cell("1", metadata={"nbgrader": {"grade": True, "grade_id": "bonus", "points": 9}})
    junk = nbformat.v4.new_code_cell("2", metadata={"nbgrader": "not a dict"})
    nb.cells += [bonus, junk]
    fixed, notes = repair(nb, release)
    assert "restored the grading metadata (grade, points) of cell answer_prev_token_scores" in notes
    assert "nbgrader" not in fixed.cells[-1].metadata and "nbgrader" not in fixed.cells[-2].metadata
    assert [c.metadata.get("nbgrader") for c in fixed.cells[:-2]] == [c.metadata.get("nbgrader") for c in release.cells]


@pytest.mark.skipif(os.geteuid() != 0, reason="users are claimed only by a grader running as root")
def test_no_two_runs_on_one_machine_hold_the_same_user():
    with claim_uid(FIRST_UID + 500) as first, claim_uid(FIRST_UID + 500) as second:
        assert first == FIRST_UID + 500 and second == FIRST_UID + 501
    with claim_uid(FIRST_UID + 500) as again:
        assert again == FIRST_UID + 500


# -- resources: disk, memory, dead workers ---------------------------------------------------

def _took(feedback: str, where: str) -> re.Match:
    """The fill-disk submission's line for ``where``: how many MB it wrote, then the error that stopped it."""
    found = re.search(rf"{where} took (\d+) MB, then ([^<\n]+)", feedback)
    took = re.findall("[^<>]*took[^<>]*", feedback)
    assert found, f"no '{where} took' line in the feedback; its 'took' lines: {took}"
    return found


def test_a_submission_cannot_fill_the_disk(graded):
    """Each write stops with an error at its mount's size; which error the kernel names is not ours to fix."""
    feedback = graded.feedback(named("fill-disk").student)
    tmp, home = _took(feedback, "/tmp"), _took(feedback, "home")
    assert int(tmp.group(1)) <= LIMITS.tmp_bytes // MiB and int(home.group(1)) <= LIMITS.disk_bytes // MiB
    status = graded.rows[named("fill-disk").student].status
    assert "it filled /tmp" in status and "it filled its private folder" in status, status


def test_a_submission_cannot_hold_more_than_its_memory_in_all(graded):
    row = graded.rows[named("memory-forks").student]
    assert f"its {LIMITS.memory_total_bytes / GiB:g} GB of memory" in row.status, row.status
    held = re.search(r"children held \[.*?\] MB: (\d+) MB together at most", graded.feedback(named("memory-forks").student))
    if held:  # a cgroup killed a child; the kernel lived to say what its living children held at once
        # Never more than the run's budget. Nothing else need fit beside them: a warm kernel's pages, shared with
        # its zygote, are charged to the grader (interplab.grading.warm), and this notebook writes nothing to /tmp.
        assert int(held.group(1)) * MiB < LIMITS.memory_total_bytes


def test_a_dead_grading_worker_costs_only_the_submission_it_was_grading(graded):
    assert len(graded.killed) >= 2  # killed once beside another submission, once alone
    assert graded.rows[named("kill-worker").student].status.startswith("not graded: the grading process died")
    others = [row for name, row in graded.rows.items() if name != named("kill-worker").student]
    assert not [row.status for row in others if "grading process died" in row.status or "stopped" in row.status
                and row.status.startswith("not graded")]


def test_outputs_saved_in_a_submission_are_dropped_before_nbgrader_reads_it(graded):
    submitted = graded.work / "submitted" / named("many-outputs").student / LAB / "induction_heads.ipynb"
    assert submitted.stat().st_size < 1024**2
    assert graded.rows[named("many-outputs").student].status == "graded"


# -- what the instructor reads: the CSV and the console ---------------------------------------

def test_the_csv_reads_back_whole_with_csv_and_pandas(graded):
    rows = read_rows(graded.csv)  # Python's csv, with its default field size limit
    assert set(rows) == set(graded.rows)
    for row in rows.values():
        assert len(row.status) <= MAX_STATUS_CHARS and len(row.details) <= MAX_DETAILS_CHARS
        assert not re.search(r"[\x00-\x1f\x7f]", row.status + row.details)
    forged = rows[named("forged-error").student].details  # its 50 MB error text is refused before it is read
    assert "repeated_tokens: the recorded answer was rejected" in forged and "over the limit" in forged
    pandas = pytest.importorskip("pandas")
    frame = pandas.read_csv(graded.csv, dtype={"status": str, "details": str}, keep_default_na=False)
    assert list(frame["student"]) == list(rows) and list(frame["total"]) == [r.total() for r in rows.values()]


def test_a_csv_cell_is_one_plain_line_and_never_a_formula():
    from interplab.grading.grade import cell_text

    assert cell_text('=HYPERLINK("x")', 100) == "'=HYPERLINK(\"x\")"
    assert cell_text("a\x00b\r\n\x1b[31mc\u2028d", 100) == "a b [31mc d"
    assert cell_text("x" * 50, 10) == "x" * 9 + "…"


def test_the_console_shows_progress_a_summary_and_plain_statuses(graded):
    console = graded.console
    rows = graded.rows.values()
    failed = sum(r.status.startswith("not graded") for r in rows)
    problems = sum(r.status != "graded" and not r.status.startswith("not graded") for r in rows)
    assert f"graded {len(rows) - failed - problems}, graded with problems {problems}, not graded {failed}" in console
    assert f"grading {LAB}" in console and f"{len(rows)}/{len(rows)}" in console  # the progress bar
    for noise in ("SAWarning", "Traceback", "nbclient", "site-packages", str(ROOT), "File \""):
        assert noise not in console, noise
    listed = [line for line in console.splitlines() if line.startswith("  ")]
    assert len(listed) == failed + problems and all(len(line) <= 160 for line in listed)


# -- student HTML and JavaScript in the instructor's browser -----------------------------------

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def browser():
    playwright = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        yield browser
        browser.close()


def _open(browser, path: Path) -> tuple:
    """The page as a browser shows it, every request it tried to make (none is let out), and its dialogs."""
    page = browser.new_page()
    requests, dialogs = [], []
    page.route(re.compile(r"^(https?|wss?|ftp)://"), lambda route: (requests.append(route.request.url), route.abort()))
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(path.as_uri(), wait_until="load")
    page.wait_for_timeout(1000)  # time for onerror handlers and timers
    return page, requests, dialogs


def _assert_no_student_script_ran(page, requests, dialogs, title: str):
    assert page.evaluate(f"typeof window.{PWNED}") == "undefined", page.evaluate(f"String(window.{PWNED})")
    assert page.title() == title and dialogs == []
    assert not [url for url in requests if ATTACKER in url]
    assert not page.query_selector_all("[href^='javascript:' i], [src^='javascript:' i], script[type*=widget]")


def test_no_student_script_runs_in_the_feedback_and_honest_outputs_show(graded, browser):
    path = graded.feedback_path(named("html-js").student)
    page, requests, dialogs = _open(browser, path)
    _assert_no_student_script_ran(page, requests, dialogs, "induction_heads")
    text = page.inner_text("body")
    assert HONEST_TEXT in text and HONEST_HTML in text and "its scripts were removed by the grader" in text
    loaded = page.evaluate("Array.from(document.images).filter(i => i.src.startsWith('data:image/png') "
                           "&& i.complete && i.naturalWidth > 0).length")
    assert loaded >= 2  # the plot, shown twice (its width forged once)
    page.close()


def test_no_student_script_runs_in_what_the_formgrader_serves(graded, browser, tmp_path):
    """The formgrader renders the autograded notebook with nbconvert's HTMLExporter and its own
    template, from the Jupyter server's origin; rendered here the same way, without the course's
    configuration (so without nbconvert's sanitiser), the graded notebook alone must be safe."""
    from nbconvert.exporters import HTMLExporter
    from nbgrader.server_extensions.formgrader import handlers
    from traitlets.config import Config

    config = Config()
    config.HTMLExporter.template_name = "formgrade"
    config.HTMLExporter.extra_template_basedirs = [handlers.template_path]
    student = named("html-js").student
    autograded = graded.work / "autograded" / student / LAB / "induction_heads.ipynb"
    resources = {"assignment_id": LAB, "notebook_id": "induction_heads", "submission_id": "x", "index": 0,
                 "total": 1, "base_url": "", "student": student, "last_name": "", "first_name": "",
                 "notebook_path": str(autograded)}
    html, _ = HTMLExporter(config=config).from_filename(str(autograded), resources=resources)
    (tmp_path / "formgrade.html").write_text(html)
    page, requests, dialogs = _open(browser, tmp_path / "formgrade.html")
    _assert_no_student_script_ran(page, requests, dialogs, page.title())
    assert "PWNED" not in page.title() and HONEST_TEXT in page.inner_text("body")
    page.close()


# -- the two ways a run's total memory is bounded, in process ----------------------------------

#: Three children that hold 100 MB each (touched), then wait.
_CHILDREN = ("import os, time\n"
             "for _ in range(3):\n"
             "    if os.fork() == 0:\n"
             "        hog = bytearray(100 * 2**20)\n"
             "        time.sleep(30)\n"
             "        os._exit(0)\n"
             "time.sleep(30)\n")


def test_the_watchdog_stops_a_run_whose_processes_together_hold_too_much():
    from interplab.grading.budget import Budget

    budget = Budget(memory_bytes=200 * MiB, processes=64)  # no cgroup: sampling
    proc = subprocess.Popen([sys.executable, "-c", _CHILDREN], start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not budget.watch(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert budget.over and budget.peak_sampled > 200 * MiB
    assert "used more than its" in budget.close()


def test_a_cgroup_holds_a_run_to_its_memory_where_the_grader_may_make_one():
    from interplab.grading.budget import Budget

    budget = Budget.start(memory_bytes=200 * MiB, processes=64)
    if budget.cgroup is None:
        pytest.skip(f"no cgroup here: {budget.why_not_cgroup}")
    proc = subprocess.run(budget.command([sys.executable, "-c", _CHILDREN.replace("30", "2")]), timeout=120)
    assert proc.returncode == 0  # the parent lives: the kernel killed a child, the biggest
    message = budget.close()
    assert message is not None and re.search(r"went over its .* GB of memory .*: \d+ of its processes w", message)
