"""Warm runs (``interplab.grading.warm``): one zygote per grading process, a fork of it per run.

Each test runs small notebooks through ``run_notebook`` in the sandbox, as ``TrustedExecute`` does,
and reads what their kernels printed. The guarantees are the cold sandbox's (``tests/test_hostile.py``
grades its whole hostile corpus through warm runs), plus the ones a shared zygote must add: a run
starts with the course imported, yet finds nothing that an earlier run left (module state, files,
processes, IPC, sockets, environment, memory), and it cannot see, signal or outlive into the zygote.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

from interplab.grading import warm
from interplab.grading.budget import Cgroup
from interplab.grading.execute import Run, run_notebook
from interplab.grading.sandbox import FIRST_UID, Limits, Sandbox, claim_uid, kill_user

GiB, MiB = 1024**3, 1024**2
LIMITS = Limits(cell_seconds=120, notebook_seconds=300, memory_bytes=6 * GiB, memory_total_bytes=1 * GiB,
                disk_bytes=64 * MiB, tmp_bytes=64 * MiB)
#: What the first run leaves behind, each named with this prefix (and a per-test token).
MARK = "ilab-warm-mark"

if os.geteuid() != 0:
    pytest.skip("warm runs need a grader running as root", allow_module_level=True)
if Sandbox(LIMITS).problem:
    pytest.skip(f"the grading sandbox cannot start here ({Sandbox(LIMITS).problem})", allow_module_level=True)
if isinstance(Cgroup.find_parents(), str):
    pytest.skip(f"warm runs need a memory cgroup ({Cgroup.find_parents()})", allow_module_level=True)


@contextlib.contextmanager
def _private(under: str | None = None) -> Iterator[tuple[Path, Sandbox]]:
    """A private folder (under /tmp unless said) and a sandbox for a user of its own, as
    ``TrustedExecute`` makes them."""
    tmp = Path(tempfile.mkdtemp(prefix="interplab-warm-test-", dir=under))
    try:
        with claim_uid(FIRST_UID + 700) as uid:
            sandbox = Sandbox(LIMITS, uid=uid)
            kill_user(uid)
            private = tmp / "private"
            sandbox.prepare(private)
            yield private, sandbox
            kill_user(uid)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(*cells: str, env: dict[str, str] | None = None, under: str | None = None,
        limits: Limits = LIMITS, ends: bool = True) -> tuple[Run, str]:
    """Run one notebook of ``cells`` (warm, unless its private folder is not ``under`` /tmp); what
    ran, and the text its cells printed (``ends``: it must have run to its end)."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    with _private(under) as (private, sandbox):
        nbformat.write(nb, str(private / "notebook.ipynb"))
        ran = run_notebook(private / "notebook.ipynb", private / "executed.ipynb", cwd=private, env=env,
                           limits=limits, sandbox=sandbox)
    if not ends:
        return ran, ""
    assert ran.notebook is not None, ran.problem
    printed = "".join(o.get("text", "") + o.get("evalue", "") for c in ran.notebook.cells for o in c.get("outputs", []))
    return ran, printed


def said(printed: str, key: str):
    """The value a probe printed as ``key=<json>`` on a line of its own."""
    line = next(line for line in printed.splitlines() if line.startswith(f"{key}="))
    return json.loads(line.removeprefix(f"{key}="))


def _host_processes_named(name: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if entry.name.isdigit() and name in (entry / "cmdline").read_bytes().decode(errors="replace"):
                found.append(entry.name)
    return found


#: Prints ``warm=`` the course's modules a kernel finds imported before it imports anything.
IMPORTED = """\
import json, sys
print("warm=" + json.dumps([m for m in ("torch", "transformer_lens", "interplab.checker") if m in sys.modules]))
"""


def test_a_warm_run_starts_with_torch_and_the_course_imported_from_one_zygote():
    _, printed = run(IMPORTED)
    assert said(printed, "warm") == ["torch", "transformer_lens", "interplab.checker"], printed
    first = warm.zygote(Sandbox(LIMITS))
    _, printed = run(IMPORTED)
    assert said(printed, "warm") == ["torch", "transformer_lens", "interplab.checker"]
    assert warm.zygote(Sandbox(LIMITS)) is first and first.alive()


#: Searches the kernel's own writable memory for anything that looks like a mark: ``found=`` a list.
SCAN_MEMORY = r"""
import json, re
pattern = re.compile(rb"ilab-warm-mark-[0-9a-f]{32}")
found = set()
with open("/proc/self/maps") as maps, open("/proc/self/mem", "rb", buffering=0) as mem:
    for line in maps:
        span, perms = line.split()[:2]
        if not perms.startswith("rw"):
            continue
        start, end = (int(x, 16) for x in span.split("-"))
        for at in range(start, end, 1 << 24):
            try:
                mem.seek(at)
                chunk = mem.read(min(1 << 24, end - at) + 64)
            except OSError:
                continue
            found.update(m.decode() for m in pattern.findall(chunk))
print("found=" + json.dumps(sorted(found)))
"""

#: The first run's mess: changed modules, files wherever it may write, a daemon, a SysV segment
#: (which outlives its processes unless the IPC namespace goes too).
LEAVE = f"""\
import ctypes, json, os, pathlib, subprocess, sys, time
import torch, interplab, interplab.judge
mark = os.environ["MARK"]
torch.allclose = lambda *args, **kwargs: True
interplab.judge.judge = None
interplab.left_here = mark
sys.modules[mark] = sys
for folder in ("/tmp", os.getcwd(), os.path.expanduser("~")):
    pathlib.Path(folder, mark).write_text(mark)
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(900)", "{MARK}-daemon"], start_new_session=True)
print("shm=" + json.dumps(ctypes.CDLL(None).shmget(0x1ab7, 4096, 0o1666)))  # IPC_CREAT | 0666
time.sleep(1)  # let the daemon start
"""

#: The second run looks for all of it (after its memory scan: a mark in its own code would be found).
LOOK = f"""\
import ctypes, json, os, pathlib, sys
import torch, interplab, interplab.judge
print("left=" + json.dumps({{
    "torch.allclose": torch.allclose(torch.zeros(1), torch.ones(1)),
    "judge": interplab.judge.judge is None,
    "module attribute": hasattr(interplab, "left_here"),
    "module": [name for name in sys.modules if name.startswith("{MARK}")],
    "files": [str(p) for folder in ("/tmp", os.getcwd(), os.path.expanduser("~"))
              for p in pathlib.Path(folder).rglob("{MARK}*")],
    "processes": [p.name for p in pathlib.Path("/proc").iterdir() if p.name.isdigit()
                  and "{MARK}" in (p / "cmdline").read_bytes().decode(errors="replace")],
    "environment": [k for k, v in os.environ.items() if "{MARK}" in k + v],
    "shm": ctypes.CDLL(None).shmget(0x1ab7, 0, 0) != -1,
}}))
"""


def test_the_second_run_of_a_warm_worker_finds_nothing_the_first_left():
    mark = f"{MARK}-{secrets.token_hex(16)}"
    # padded, its request is longer than the next one's: the next cannot merely overwrite it
    first, printed = run(LEAVE, SCAN_MEMORY, env={"PADDING": "p" * 20_000, "MARK": mark})
    assert first.problem is None, first.problem
    assert said(printed, "shm") >= 0, printed  # the segment was made
    assert said(printed, "found") == [mark]    # the scan finds what is there: its own mark
    assert _host_processes_named(f"{MARK}-daemon") == []  # the daemon died with its run

    _, printed = run(SCAN_MEMORY, LOOK)
    assert said(printed, "found") == []  # not in the zygote's memory either: its request was wiped
    assert said(printed, "left") == {"torch.allclose": False, "judge": False, "module attribute": False, "module": [],
                                     "files": [], "processes": [], "environment": [], "shm": False}


#: What a kernel can see of the processes around it and of its own rights.
SURROUNDINGS = """\
import json, os, pathlib
status = dict(line.split(":\\t", 1) for line in pathlib.Path("/proc/self/status").read_text().splitlines() if ":\\t" in line)
try:
    os.kill(1, 9)
    signalled = "killed"
except OSError as exc:
    signalled = type(exc).__name__
try:
    pathlib.Path("/proc/1/environ").read_bytes()
    environ = "read"
except OSError as exc:
    environ = type(exc).__name__
print("seen=" + json.dumps({
    "uid": os.getuid(), "capabilities": [status[k].strip() for k in ("CapPrm", "CapEff", "CapAmb")],
    "no_new_privs": status["NoNewPrivs"].strip(), "signal pid 1": signalled, "pid 1 environ": environ,
    "processes": sorted((p / "comm").read_text().strip() for p in pathlib.Path("/proc").iterdir() if p.name.isdigit()),
    "pid 1": pathlib.Path("/proc/1/comm").read_text().strip(),
    "cgroup": sorted({line.split(":")[2] for line in pathlib.Path("/proc/self/cgroup").read_text().splitlines()}),
    "writable /proc/sys": os.access("/proc/sys/kernel/hostname", os.W_OK),
}))
"""


def test_a_warm_kernel_cannot_see_or_signal_the_zygote_and_holds_no_privilege():
    _, printed = run(SURROUNDINGS)
    seen = said(printed, "seen")
    assert FIRST_UID <= seen["uid"] < FIRST_UID + 1000
    assert seen["capabilities"] == ["0000000000000000"] * 3 and seen["no_new_privs"] == "1"
    # its own run's processes only (the zygote and its other runs are in the process tree above)
    assert seen["processes"] == ["ilab-kernel", "ilab-runner", "ilab-supervisor"] and seen["pid 1"] == "ilab-supervisor"
    assert seen["signal pid 1"] == "PermissionError" and seen["pid 1 environ"] == "PermissionError"
    assert seen["cgroup"] == ["/"]  # its own cgroup namespace, rooted at the run's cgroup
    assert seen["writable /proc/sys"] is False


def test_a_zygote_that_died_is_started_again():
    first = warm.zygote(Sandbox(LIMITS))
    first.close()
    _, printed = run(IMPORTED)
    assert said(printed, "warm") == ["torch", "transformer_lens", "interplab.checker"]
    assert warm.zygote(Sandbox(LIMITS)) is not first


def test_a_warm_run_is_held_to_its_memory_by_its_cgroup():
    ran, _ = run("hog = bytearray(1536 * 2**20)\nhog[::4096] = b'x' * len(hog[::4096])\nprint('survived')")
    assert ran.problem and "went over its 1 GB of memory" in ran.problem, ran.problem


def test_a_warm_run_is_held_to_its_time_by_its_supervisor():
    """A run that never ends is stopped at its notebook's limit, and so is a child it left spinning."""
    limits = dataclasses.replace(LIMITS, notebook_seconds=8)
    run(IMPORTED)  # the zygote is up: what is timed is the run
    started = time.monotonic()
    ran, _ = run("import subprocess, sys\n"
                 "subprocess.Popen([sys.executable, '-c', 'while True: pass', 'ilab-warm-mark-spinner'])\n"
                 "while True: pass", limits=limits, ends=False)
    assert ran.problem and "past its 8 s limit" in ran.problem, ran.problem
    assert time.monotonic() - started < 8 + 45  # the run's own start (a fork) and its handover, not the grader's 60 s
    assert _host_processes_named("ilab-warm-mark-spinner") == []


#: A cell whose outputs are the same wherever it runs: an import, a computation, a display.
ALIKE = """\
import torch
from IPython.display import HTML, display
print("sum=" + str(torch.arange(10.0).pow(2).sum().item()))
display(HTML("<b>shown</b>"))
"""


def test_a_run_that_cannot_be_warm_runs_cold_with_the_same_outputs():
    """A private folder outside /tmp (where a warm run mounts its fresh one) runs in bubblewrap, as
    before: the same limits, user and sandbox, a kernel that imports torch itself."""
    warm_run, warm_printed = run(IMPORTED, ALIKE)
    cold_run, cold_printed = run(IMPORTED, ALIKE, under="/var/tmp")
    assert (warm_run.problem, cold_run.problem) == (None, None)
    assert said(cold_printed, "warm") == [] and said(warm_printed, "warm") != []
    assert said(cold_printed, "sum") == said(warm_printed, "sum") == 285.0
    cold_outputs, warm_outputs = (r.notebook.cells[1].outputs for r in (cold_run, warm_run))
    assert [o.output_type for o in cold_outputs] == [o.output_type for o in warm_outputs] == ["stream", "display_data"]
    _, printed = run(SURROUNDINGS, under="/var/tmp")
    seen = said(printed, "seen")
    assert FIRST_UID <= seen["uid"] < FIRST_UID + 1000 and seen["capabilities"] == ["0000000000000000"] * 3
