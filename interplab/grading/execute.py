"""Run a notebook top to bottom in a fresh kernel, the way the grader and the tests do.

It runs in a child process (``python -m interplab.grading.execute IN OUT``) so that a kernel
that hangs, floods its output or kills itself takes down only that child; for a submission,
the child runs inside the sandbox (``interplab.grading.sandbox``), the grader's process outside.
Where it can, a submission's run is warm instead (``interplab.grading.warm``): the same runner
(``execute``) in a fork of a sandboxed process that imported torch and the course once, isolated
the same way; ``run_notebook`` watches either kind alike (``Child``).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

if __name__ == "__main__":
    # This is a run's own process, started once per notebook. nbformat validates with jsonschema, which imports
    # rfc3987-syntax (installed for jupyter-events) for an "iri" format no notebook schema uses; that import
    # compiles a grammar, 1.1 s of CPU at the start of every graded run. Absent, jsonschema skips the check.
    sys.modules.setdefault("rfc3987_syntax", None)

import nbformat

from interplab.grading.budget import Budget
from interplab.grading.confine import NOTEBOOK_FD, REPORT
from interplab.grading.sanitize import strip_active
from interplab.grading.sandbox import Limits, Sandbox, private_env

#: What the kernel of a graded or tested notebook needs to stay polite on a shared machine.
QUIET_ENV = {"OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
             "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONUNBUFFERED": "1",
             "TQDM_DISABLE": "1", "MPLBACKEND": "Agg"}
#: What a sandboxed run may inherit from the grader's environment. Nothing else passes: not the
#: instructor's secrets, tokens or settings, whatever their shell holds.
PASSED_ENV = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ")
#: An executed notebook larger than this is not read back (its outputs are not shown).
MAX_NOTEBOOK_BYTES = 64 * 1024**2


@dataclass(frozen=True)
class Run:
    """How a run ended: the executed notebook (None if none was written) and a problem, if any."""

    notebook: nbformat.NotebookNode | None
    problem: str | None


def run_notebook(
    source: Path, out: Path, cwd: Path, env: dict[str, str] | None = None,
    limits: Limits = Limits(), sandbox: Sandbox | None = None,
) -> Run:
    """Execute ``source`` in a child process (sandboxed if given); write the result to ``out``.

    Sandboxed, ``cwd`` is the private folder: ``source`` and ``out`` lie in it, and the run's
    memory, processes and files are bounded as a whole (``Budget``). Where it can, a sandboxed run
    is warm (``interplab.grading.warm``): forked, isolated the same way, from a process of this
    grader's that has imported torch and the course already.
    """
    runner = [str(source), str(out), "--cell-timeout", str(limits.cell_seconds), "--output-bytes",
              str(limits.output_bytes), "--cwd", str(cwd)]
    cmd = [sys.executable, "-m", "interplab.grading.execute", *runner]
    if sandbox is None:
        child_env = {**os.environ, **QUIET_ENV, **(env or {})}
        return _run(lambda log: _Process(cmd, child_env, log), out, limits)
    from interplab.grading import warm  # (which imports this module)

    # Only an allow-list of the grader's environment enters the sandbox: never its secrets.
    child_env = {**{k: v for k, v in os.environ.items() if k in PASSED_ENV}, **QUIET_ENV, **(env or {})}
    isolated = sandbox.problem is None
    if isolated:
        cmd.append("--sandboxed")
        runner.append("--sandboxed")
    child_env |= private_env(cwd, isolated)
    budget = Budget.start(limits.memory_total_bytes, limits.processes)
    results = os.open(cwd, os.O_RDONLY | os.O_DIRECTORY) if isolated else None

    def start(log: BinaryIO) -> Child:
        if isolated and (run := warm.start(sandbox, budget, cwd, runner, child_env, results, log,
                                                limits.notebook_seconds)):
            return run
        cold = budget.command(sandbox.command(cmd, private=cwd, results_fd=results, seconds=limits.notebook_seconds))
        return _Process(cold, child_env, log, results)

    try:
        return _run(start, out, limits, budget, results, private=None if isolated else cwd)
    finally:
        if results is not None:
            os.close(results)


#: Seconds the sandbox's supervisor gets, past the notebook's limit, to hand the results out.
HANDOVER_SECONDS = 60


class Child(Protocol):
    """A started run, as ``_run`` watches it: a process group (``_Process``) or a warm run."""

    #: The top of its processes on this host (which the watchdog samples); None where a cgroup holds them.
    pid: int | None
    returncode: int | None

    def wait(self, timeout: float | None) -> bool:
        """Whether it has ended, after waiting at most ``timeout`` seconds (None: until it has)."""

    def kill(self) -> None:
        """Kill every process of it."""


class _Process:
    """A cold run: its command (bubblewrap, or the runner itself) started as a process group."""

    def __init__(self, cmd: list[str], env: dict[str, str], log: BinaryIO, results: int | None = None):
        self._proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                      start_new_session=True, pass_fds=() if results is None else (results,))
        self.pid: int | None = self._proc.pid

    @property
    def returncode(self) -> int | None:
        return self._proc.returncode

    def wait(self, timeout: float | None) -> bool:
        try:
            self._proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return False
        return True

    def kill(self) -> None:
        try:
            os.killpg(self._proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _run(start: Callable[[BinaryIO], Child], out: Path, limits: Limits, budget: Budget | None = None,
         results: int | None = None, private: Path | None = None) -> Run:
    """Start a run (``start``, given its log) and watch it to its end or its limits; ``results``:
    the sandbox's supervisor hands out the results and a report; ``private``: an unsandboxed
    private folder, watched for size."""
    seconds = limits.notebook_seconds + (HANDOVER_SECONDS if results is not None else 0)
    # A file, not a pipe: a flood of output cannot fill our memory. Unsandboxed, it lies in the
    # folder the submission may write, so it is read back through this handle, never by name:
    # the submission could have put a symlink (to a hidden reference, say) where it was.
    with open(out.with_suffix(".log"), "w+b") as log:
        child = start(log)
        problems, deadline, next_size_check = [], time.monotonic() + seconds, 0.0
        try:
            while not child.wait(timeout=0.25):
                # (a run without a host process to sample is held by a cgroup)
                if budget is not None and child.pid is not None and budget.watch(child.pid):
                    break  # its problem is said by budget.close()
                if private is not None and time.monotonic() > next_size_check:
                    next_size_check = time.monotonic() + 1
                    if folder_bytes(private) > limits.disk_bytes:
                        problems.append(f"it wrote more than its {limits.disk_bytes // 1024**2} MB private folder "
                                        "holds and was stopped")
                        break
                if time.monotonic() > deadline:
                    problems.append(f"the notebook ran past its {limits.notebook_seconds} s limit and was stopped")
                    break
        finally:
            child.kill()
            if budget is not None:
                budget.kill()
            child.wait(timeout=None)
        if budget is not None and (memory := budget.close()):
            problems.append(memory)
        notebook = _read(out)
        if results is not None:
            problems += _supervised(out.parent, limits, child.returncode, log, notebook is None, bool(problems))
        elif not problems and (child.returncode != 0 or notebook is None):
            problems.append(f"the notebook could not be run to its end{_how(child.returncode)}: {plain(_tail(log))}")
    return Run(notebook, "; ".join(problems) or None)


def _supervised(private: Path, limits: Limits, returncode: int, log, no_notebook: bool, stopped: bool) -> list[str]:
    """What the sandbox's report (written by its supervisor, never by the submission) says went wrong."""
    try:
        report = json.loads((private / REPORT).read_text())
    except (OSError, ValueError):
        if stopped:
            return []
        return [f"the sandbox could not run the notebook{_how(returncode)}: {plain(_tail(log))}"]
    problems = []
    if report.get("timed_out"):
        problems.append(f"the notebook ran past its {limits.notebook_seconds} s limit and was stopped")
    for key, where, size in (("private_full", "its private folder", limits.disk_bytes),
                             ("tmp_full", "/tmp", limits.tmp_bytes)):
        if report.get(key):
            problems.append(f"it filled {where} (the limit is {size // 1024**2} MB)")
    if report.get("notebook_too_big"):
        problems.append(f"its executed notebook was over {MAX_NOTEBOOK_BYTES // 1024**2} MB, so its outputs are not shown")
    code = report.get("returncode")
    if not report.get("timed_out") and not stopped and (code != 0 or no_notebook and not report.get("notebook_too_big")):
        how = _how(code) if isinstance(code, int) else ""
        # killed by a signal, its last words (the kernel's farewell) say nothing more
        why = "" if how.startswith(" (its runner was killed") else f": {plain(str(report.get('log', '')))}"
        problems.append(f"the notebook could not be run to its end{how}{why}")
    return problems


def folder_bytes(folder: Path) -> int:
    """Bytes on disk under ``folder`` (blocks really used: a sparse file counts what it holds)."""
    total, todo = 0, [str(folder)]
    while todo:
        try:
            entries = list(os.scandir(todo.pop()))
        except OSError:
            continue
        for entry in entries:
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            total += info.st_blocks * 512
            if entry.is_dir(follow_symlinks=False):
                todo.append(entry.path)
    return total


def _how(returncode: int) -> str:
    """How the runner ended, in words: a signal shows as -N, or as 128 + N through bubblewrap."""
    signum = -returncode if returncode < 0 else returncode - 128 if returncode > 128 else 0
    try:
        return f" (its runner was killed by {signal.Signals(signum).name})" if signum else ""
    except ValueError:
        return f" (exit status {returncode})"


#: Log lines that every kernel prints and that explain nothing.
_NOISE = ("Kernel is running over TCP without encryption", "[IPKernelApp]")
#: What nbclient's and Python's messages mean, said plainly; the first match wins.
_PLAIN = (
    (re.compile(r"DeadKernelError|Kernel died"), "the kernel died (the notebook exited, crashed or was killed)"),
    (re.compile(r"CellTimeoutError|Cell execution timed out"), "a cell ran past its time limit"),
    (re.compile(r"No space left on device|Disk quota exceeded|File too large"), "it ran out of space for its files"),
    (re.compile(r"MemoryError|Cannot allocate memory"), "it ran out of memory"),
)
_PATH = re.compile(r"(?:[A-Za-z]:)?(?:/[^\s/:'\"]+){2,}/?")


def plain(log: str) -> str:
    """A runner's last words as one plain line: a known failure in words, else its last line
    without tracebacks' host paths."""
    for pattern, words in _PLAIN:
        if pattern.search(log):
            return words
    lines = [line.strip() for line in log.splitlines() if line.strip() and not any(n in line for n in _NOISE)]
    lines = [line for line in lines if not line.startswith(("File ", "Traceback", "^", "~"))]
    return _PATH.sub("<path>", lines[-1])[:200] if lines else "no message"


def _tail(log, size: int = 2000) -> str:
    end = os.fstat(log.fileno()).st_size
    return os.pread(log.fileno(), size, max(0, end - size)).decode(errors="replace")


def _read(path: Path) -> nbformat.NotebookNode | None:
    try:
        if path.is_symlink() or not path.is_file() or path.stat().st_size > MAX_NOTEBOOK_BYTES:
            return None
        nb = nbformat.read(str(path), as_version=4)
        nbformat.validate(nb)  # it may be the submission's own making: take only a well-formed one
        return nb
    except Exception:
        return None


def capped_client(nb: nbformat.NotebookNode, output_bytes: int, static: bool = False, **kwargs):
    """An nbclient that keeps at most ``output_bytes`` of output per cell (bytes, not lines);
    ``static``: scripts in HTML outputs are dropped first (they cannot run where a graded
    notebook is shown, and a figure's inlined bundle would fill the cell's share)."""
    from nbclient import NotebookClient

    used: dict[int, int] = {}  # bytes of output so far, per cell

    class CappedClient(NotebookClient):
        def output(self, outs, msg, display_id, cell_index):
            data = msg.get("content", {}).get("data") if isinstance(msg.get("content"), dict) else None
            if static and isinstance(data, dict) and isinstance(data.get("text/html"), str):
                data["text/html"] = strip_active(data["text/html"])
            size = len(str(msg.get("content", "")).encode())
            before = used.get(cell_index, 0)
            used[cell_index] = before + size
            if before + size <= output_bytes:
                return super().output(outs, msg, display_id, cell_index)
            if before <= output_bytes:
                note = nbformat.v4.new_output("stream", name="stdout",
                                              text=f"\n[output cut: this cell printed over {output_bytes} bytes]\n")
                outs.append(note)
            return None

    return CappedClient(nb, **kwargs)


def parser() -> argparse.ArgumentParser:
    """The runner's options; a warm run's supervisor (``interplab.grading.warm``) reads them too."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("source", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--cell-timeout", type=int, default=120)
    parser.add_argument("--output-bytes", type=int, default=Limits.output_bytes)
    parser.add_argument("--cwd", type=Path, default=Path.cwd())
    parser.add_argument("--sandboxed", action="store_true",
                        help=f"write the notebook to fd {NOTEBOOK_FD} (a pipe to the sandbox's supervisor), not OUT; "
                             "keep HTML outputs static")
    return parser


def execute(args: argparse.Namespace, kernel_manager_class: type | None = None) -> None:
    """Run the notebook as ``args`` say: the runner's work, in its own process (``main``) or in a
    warm run's fork, whose ``kernel_manager_class`` forks the kernel too."""
    if args.sandboxed:  # the kernel runs as this user: it may not read our fds or trace us
        ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE 0
    nb = nbformat.read(str(args.source), as_version=4)
    manager = {"kernel_manager_class": kernel_manager_class} if kernel_manager_class else {}
    client = capped_client(nb, args.output_bytes, static=args.sandboxed, timeout=args.cell_timeout,
                           allow_errors=True, kernel_name="python3", interrupt_on_timeout=True,
                           shutdown_kernel="immediate", resources={"metadata": {"path": str(args.cwd)}}, **manager)
    try:
        client.execute()
    finally:  # what ran is worth keeping even when the kernel died halfway
        if args.sandboxed:
            with os.fdopen(NOTEBOOK_FD, "wb") as out:
                out.write(nbformat.writes(nb).encode())
        else:
            nbformat.write(nb, str(args.out))


def main() -> None:
    execute(parser().parse_args())


if __name__ == "__main__":
    main()
