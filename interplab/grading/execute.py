"""Run a notebook top to bottom in a fresh kernel, the way the grader and the tests do.

It runs in a child process (``python -m interplab.grading.execute IN OUT``) so that a kernel
that hangs, floods its output or kills itself takes down only that child; for a submission,
the child runs inside the sandbox (``interplab.grading.sandbox``), the grader's process outside.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat

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
    """Execute ``source`` in a child process (sandboxed if given); write the result to ``out``."""
    cmd = [sys.executable, "-m", "interplab.grading.execute", str(source), str(out),
           "--cell-timeout", str(limits.cell_seconds), "--output-bytes", str(limits.output_bytes),
           "--cwd", str(cwd)]
    inherited = os.environ if sandbox is None else {k: v for k, v in os.environ.items() if k in PASSED_ENV}
    child_env = {**inherited, **QUIET_ENV, **(env or {})}
    if sandbox is not None:
        cmd = sandbox.command(cmd, private=cwd)
        child_env |= private_env(cwd)
    # A file, not a pipe: a flood of output cannot fill our memory. It lies in the folder the
    # submission may write, so it is read back through this handle, never by name: the
    # submission could have put a symlink (to a hidden reference, say) where it was.
    with open(out.with_suffix(".log"), "w+b") as log:
        proc = subprocess.Popen(cmd, env=child_env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        try:
            proc.wait(timeout=limits.notebook_seconds)
            problem = None
        except subprocess.TimeoutExpired:
            problem = f"the notebook ran past its {limits.notebook_seconds} s limit and was stopped"
        finally:
            _kill_group(proc.pid)
            proc.wait()
        notebook = _read(out)
        if problem is None and (proc.returncode != 0 or notebook is None):
            problem = f"the notebook could not be run to its end{_how(proc.returncode)}: " + _tail(log)
    return Run(notebook, problem)


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _how(returncode: int) -> str:
    """How the runner ended, in words: a signal shows as -N, or as 128 + N through bubblewrap."""
    signum = -returncode if returncode < 0 else returncode - 128 if returncode > 128 else 0
    try:
        return f" (its runner was killed by {signal.Signals(signum).name})" if signum else ""
    except ValueError:
        return f" (exit status {returncode})"


#: Log lines that every kernel prints and that explain nothing.
_NOISE = ("Kernel is running over TCP without encryption",)


def _tail(log, size: int = 2000) -> str:
    end = os.fstat(log.fileno()).st_size
    lines = os.pread(log.fileno(), size, max(0, end - size)).decode(errors="replace").strip().splitlines()
    lines = [line for line in lines if line.strip() and not any(noise in line for noise in _NOISE)]
    return " | ".join(line[:300] for line in lines[-3:]) or "no message"


def _read(path: Path) -> nbformat.NotebookNode | None:
    try:
        if path.is_symlink() or not path.is_file() or path.stat().st_size > MAX_NOTEBOOK_BYTES:
            return None
        nb = nbformat.read(str(path), as_version=4)
        nbformat.validate(nb)  # it may be the submission's own making: take only a well-formed one
        return nb
    except Exception:
        return None


def capped_client(nb: nbformat.NotebookNode, output_bytes: int, **kwargs):
    """An nbclient that keeps at most ``output_bytes`` of output per cell (bytes, not lines)."""
    from nbclient import NotebookClient

    used: dict[int, int] = {}  # bytes of output so far, per cell

    class CappedClient(NotebookClient):
        def output(self, outs, msg, display_id, cell_index):
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("source", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--cell-timeout", type=int, default=120)
    parser.add_argument("--output-bytes", type=int, default=Limits.output_bytes)
    parser.add_argument("--cwd", type=Path, default=Path.cwd())
    args = parser.parse_args()
    nb = nbformat.read(str(args.source), as_version=4)
    client = capped_client(nb, args.output_bytes, timeout=args.cell_timeout, allow_errors=True,
                           kernel_name="python3", interrupt_on_timeout=True,
                           resources={"metadata": {"path": str(args.cwd)}})
    try:
        client.execute()
    finally:  # what ran is worth keeping even when the kernel died halfway
        nbformat.write(nb, str(args.out))


if __name__ == "__main__":
    main()
