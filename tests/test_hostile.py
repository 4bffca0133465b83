"""Grading a class full of hostile and broken submissions (``tests/hostile.py``).

One batch is graded once (module fixture), two workers, small limits: every submission of
the corpus, an honest complete one (alice), an honest untouched one (bob), and four more
copies of one submission to show grading is deterministic. While it runs a listener on the
host's loopback waits for connections that must never come. Each test then reads the CSV,
the gradebook, the feedback and the host's process table.
"""

from __future__ import annotations

import copy
import hashlib
import os
import select
import shutil
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
import torch
from course import LAB, RELEASED, ROOT, completed_lab, read
from hostile import CORPUS, DAEMON_NAME, DAEMON_SLEEP, FORK_BOMB_NAME, FULL, POINTS, Hostile, Target, named

from interplab.answers import AnswerError, Case, load_cases, save_cases
from interplab.grading.grade import Row, grade
from interplab.grading.repair import repair
from interplab.grading.sandbox import FIRST_UID, Limits, Sandbox, claim_uid
from interplab.judge import STRONG, WEAK, copy_evidence

GiB = 1024**3
#: Small limits keep this fast; a cell still gets ample time for the lab's imports on a loaded machine.
LIMITS = Limits(cell_seconds=30, notebook_seconds=90, memory_bytes=4 * GiB)
#: The submission graded five times over (four extra copies), to show the scores are stable.
REPEATED = named("os-exit").student
COPIES = [f"{REPEATED}-copy{i}" for i in range(2, 6)]


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


@dataclass
class Graded:
    rows: dict[str, Row]
    target: Target
    received: list[str]
    leftovers: list[str]
    alice_before: str
    seconds: float

    @property
    def work(self) -> Path:
        return self.target.work

    def feedback(self, student: str) -> str:
        return (self.work / "feedback" / student / LAB / "induction_heads.html").read_text()


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> Graded:
    if Sandbox(LIMITS).problem:  # unsandboxed, a submission can read solutions/: nothing to test
        pytest.skip(f"the grading sandbox cannot start here ({Sandbox(LIMITS).problem})")
    tmp = tmp_path_factory.mktemp("hostile")
    subs = tmp / "submissions"
    subs.mkdir()
    listener = Listener()
    target = Target(root=ROOT, work=tmp / "work", submissions=subs, port=listener.port, marker=tmp / "unpickled")
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
        rows = grade(ROOT, LAB, subs, tmp / "grades.csv", work=target.work, workers=2, limits=LIMITS)
        seconds = time.monotonic() - start
    finally:
        listener.close()
    leftovers = [p for p in _processes() if FORK_BOMB_NAME in p or DAEMON_NAME in p or f"sleep {DAEMON_SLEEP}" in p]
    print(f"graded {len(rows)} submissions in {seconds:.0f} s")
    return Graded({row.student: row for row in rows}, target, listener.received, leftovers, alice_before, seconds)


def _row(graded: Graded, student: str) -> Row:
    return graded.rows[student]


def test_the_whole_batch_is_graded(graded):
    expected = {"alice", "bob", *(h.student for h in CORPUS), *COPIES}
    assert set(graded.rows) == expected
    with (graded.target.work.parent / "grades.csv").open() as f:
        assert len(f.read().splitlines()) == len(expected) + 1
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


def test_grading_one_submission_five_times_gives_identical_results(graded):
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
