"""Grading past one machine: the sandboxed runs on a Dask cluster, everything else here.

``interplab grade LAB SUBMISSIONS --cluster tcp://HOST:8786`` (a scheduler started with ``dask
scheduler``, or by dask-jobqueue or dask-kubernetes) or ``--cluster local:N`` (a ``LocalCluster`` of
N worker processes on this machine) grades as without it, but each submission's run, the heavy part,
is a Dask task: ``interplab.grading.trusted.run_sandboxed`` on one worker, in the same sandbox, with
the same limits, in a private folder and as a user that worker's host gives it. docs/cluster.md says
how to set a cluster up.

What travels, and what does not:

- to a worker: the submission as nbgrader restored it, the hidden cases' *arguments* (the files a
  sandboxed kernel is handed anyway, sent once per grading run and kept by the cluster), the lab's
  exercise names and the limits. Never the seed, the expected outputs, the known mistakes or the
  judge's held-out data: the judging (``verdicts_for``), nbgrader's gradebook and the CSV stay on the
  instructor's machine;
- back: the executed notebook, the recorded answers and how the run went (``trusted.Recording``).

The instructor's side is ``grade``'s own pool of nbgrader processes, as many as the cluster has
worker threads (more with ``--workers``): each blocks on its submission's remote run, while the
rest of its work (nbgrader, judging, feedback) is a small part of a submission's time. A worker lost
mid-run takes its task with it; Dask's scheduler runs the task again on another worker (up to
``distributed.scheduler.allowed-failures`` times), and since a run changes nothing but its own
private folder, a second run is as good as a first. The nbgrader process that waits for it sees one
result, so each student is judged, and written to the gradebook and the CSV, once.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import hashlib
import os
import sys
import uuid
import warnings
from collections.abc import Mapping, Sequence
from concurrent.futures import CancelledError
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import interplab
from interplab.grading.sandbox import FIRST_UID, Limits

#: ``--cluster local:N``: a LocalCluster of N worker processes, one thread each, on this machine.
LOCAL = "local:"
#: Seconds to reach the scheduler, and to wait for its first worker.
CONNECT_SECONDS = 30
WORKER_WAIT_SECONDS = 120
INSTALL_HINT = "pip install 'interplab[cluster]'"


def local_size(target: str) -> int | None:
    """N for ``local:N``; None for a scheduler's address (the runs are on other machines)."""
    if not target.startswith(LOCAL):
        return None
    count = target.removeprefix(LOCAL)
    if not count.isdigit() or int(count) < 1:
        raise ValueError(f"--cluster {target}: say how many worker processes to start here, e.g. local:4")
    return int(count)


def _distributed():
    """Dask distributed, or an error that says how to install it."""
    try:
        import distributed
    except ImportError as exc:
        raise RuntimeError(f"--cluster needs Dask distributed, which is not installed here: {INSTALL_HINT}") from exc
    return distributed


@functools.lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """A digest of the installed interplab package (its code and the files it ships).

    Every worker's sandboxed kernel imports this package (its recorder, its models), so a worker
    with another version of it could record answers the judge here does not expect; the version
    number alone stays the same from one commit to the next.
    """
    package = Path(interplab.__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _worker_facts(limits: Limits, isolate: bool) -> dict[str, Any]:
    """Run on each worker before grading: what decides whether its runs are the ones this machine would do."""
    from interplab.grading.sandbox import Sandbox

    return {"code": code_fingerprint(), "python": sys.version.split()[0], "pid": os.getpid(),
            "sandbox": Sandbox(limits, isolate=isolate).problem}


def cases_name(cases: Mapping[str, bytes]) -> str:
    """The name the hidden cases are published under on the scheduler: one per set of cases."""
    digest = hashlib.sha256()
    for name in sorted(cases):
        digest.update(name.encode() + b"\0" + hashlib.sha256(cases[name]).digest())
    return f"interplab-cases-{digest.hexdigest()[:16]}"


def _keep(cases: dict[str, bytes]) -> dict[str, bytes]:
    """The task that holds the hidden cases on the cluster. A task rather than ``scatter``: when the
    worker holding them dies, the scheduler makes them again from the task itself, where scattered
    data would be lost, and every run waiting for it with it."""
    return cases


def _publish(client, cases: dict[str, bytes]):
    """The future of the hidden cases on the cluster, made and published under ``cases_name`` if no
    grading process has done it yet (the one ``connect`` opened always has)."""
    name = cases_name(cases)
    future = client.get_dataset(name, default=None)
    if future is not None:
        return future
    with warnings.catch_warnings():  # sent once on purpose; Dask warns about graphs over 10 MB
        warnings.filterwarnings("ignore", message=".*[Ll]arge graph.*")
        future = client.submit(_keep, cases, key=name, pure=False)
    with contextlib.suppress(KeyError):  # another grading process was quicker: same name, same cases
        client.publish_dataset(future, name=name)
    return future


@dataclass
class Connection:
    """An open connection to the cluster for one grading run (``connect``); ``close`` ends it, and
    stops the LocalCluster it started, if any."""

    address: str
    #: Worker threads when grading started: how many runs the cluster does at once.
    threads: int
    client: Any
    cases: str
    #: Things the instructor should know (a worker that runs unsandboxed, several threads per worker).
    warnings: list[str] = field(default_factory=list)
    _local: Any = None

    def close(self) -> None:
        with contextlib.suppress(Exception):  # the scheduler may be gone already: nothing left to free
            self.client.unpublish_dataset(self.cases)
        self.client.close()
        if self._local is not None:
            self._local.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def connect(target: str, cases_dir: Path, limits: Limits = Limits(), isolate: bool = True) -> Connection:
    """Reach the cluster ``target`` (a scheduler's address, or ``local:N`` to start one here), check
    that its workers can run this course's submissions as this machine would, and publish the
    hidden cases (``cases_dir``) there. Raises RuntimeError saying what is wrong and how to fix it."""
    from interplab.grading.trusted import hidden_cases

    cases = hidden_cases(cases_dir)  # first: missing references are the instructor's to fix, cluster or not
    distributed = _distributed()
    local = None
    if (n := local_size(target)) is not None:
        # Worker *processes*, one thread each: a run's kernel, memory budget and user are per process,
        # as in grade's own pool. The run's memory is bounded by the sandbox's budget, not by Dask's.
        local = distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                                         dashboard_address=None)
        address = local.scheduler_address
    else:
        address = target
    try:
        try:
            client = distributed.Client(address, timeout=CONNECT_SECONDS, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise RuntimeError(f"cannot reach the Dask scheduler at {address} ({exc}): is `dask scheduler` running "
                               "there, and its port open to this machine? (docs/cluster.md)") from exc
        try:
            connection = Connection(address, 0, client, cases_name(cases), _local=local)
            connection.threads, connection.warnings = _check_workers(client, address, limits, isolate)
            _publish(client, cases)
        except BaseException:
            client.close()
            raise
    except BaseException:
        if local is not None:
            local.close()
        raise
    for warning in connection.warnings:
        print(f"WARNING: {warning}", file=sys.stderr)
    return connection


def _check_workers(client, address: str, limits: Limits, isolate: bool) -> tuple[int, list[str]]:
    """The cluster's worker threads, and warnings; raises if a worker would run another course."""
    try:
        client.wait_for_workers(1, timeout=WORKER_WAIT_SECONDS)
    except TimeoutError as exc:
        raise RuntimeError(f"the Dask scheduler at {address} has had no worker for {WORKER_WAIT_SECONDS} s: start "
                           f"some on machines with the course installed: dask worker {address} --nthreads 1 "
                           "--nworkers N (docs/cluster.md)") from exc
    facts = client.run(_worker_facts, limits, isolate, on_error="return")
    workers = client.scheduler_info(n_workers=-1)["workers"]
    mine = {"code": code_fingerprint(), "python": sys.version.split()[0]}
    wrong, found = [], []
    for worker, fact in sorted(facts.items()):
        if isinstance(fact, BaseException):
            wrong.append(f"{worker} could not import this course ({fact.__class__.__name__}: {fact})")
            continue
        if fact["code"] != mine["code"]:
            wrong.append(f"{worker} has another version of interplab (code {fact['code']}, here {mine['code']})")
        elif fact["python"] != mine["python"]:
            wrong.append(f"{worker} runs Python {fact['python']}, this machine {mine['python']}")
        if fact["sandbox"]:
            found.append(f"worker {worker}: submissions will run {fact['sandbox']} (the CSV marks them [NOT ISOLATED])")
        threads = workers.get(worker, {}).get("nthreads", 1)
        if threads > 1:
            found.append(f"worker {worker} has {threads} threads in one process: its runs share that process (start "
                         "workers with --nthreads 1 and --nworkers N, as docs/cluster.md says)")
    if wrong:
        raise RuntimeError("these Dask workers cannot grade for this machine: " + "; ".join(wrong)
                           + ". Install the same course (the same commit, in the same Python) on every worker, "
                           "then start them again")
    return sum(w.get("nthreads", 1) for w in workers.values()), found


# -- in each grading process: one run, on the cluster ------------------------------------------

_CLIENTS: dict[str, Any] = {}
_CASES: dict[tuple[str, Path], Any] = {}


def _client(address: str):
    """This process's client of the scheduler at ``address`` (one per process, kept for its life)."""
    if address not in _CLIENTS:
        distributed = _distributed()
        try:
            client = distributed.Client(address, timeout=CONNECT_SECONDS, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise RuntimeError(f"cannot reach the Dask scheduler at {address} ({exc})") from exc
        atexit.register(client.close)
        _CLIENTS[address] = client
    return _CLIENTS[address]


def run_on_cluster(address: str, cases_dir: Path, label: str, notebook: str, exercises: Sequence[str],
                   limits: Limits = Limits(), isolate: bool = True, first_uid: int = FIRST_UID):
    """``trusted.run_sandboxed`` on a worker of the cluster at ``address``: the same arguments, the
    hidden cases (``cases_dir``) as the cluster keeps them; ``label`` names the task (lab-student).
    Blocks until the run is done, wherever Dask ran it in the end."""
    from distributed import KilledWorker

    from interplab.grading.trusted import hidden_cases, run_sandboxed

    client = _client(address)
    if (address, cases_dir) not in _CASES:
        _CASES[address, cases_dir] = _publish(client, hidden_cases(cases_dir))
    future = client.submit(run_sandboxed, notebook, _CASES[address, cases_dir], list(exercises), limits, isolate,
                           first_uid, key=f"interplab-run-{label}-{uuid.uuid4().hex[:8]}", pure=False)
    try:
        return future.result()
    except KilledWorker as exc:
        raise RuntimeError(f"every Dask worker that ran this submission died before it ended ({exc}): it may crash "
                           "its worker process; grade it on its own, without --cluster, to see why") from exc
    except CancelledError as exc:  # the scheduler forgot the task: it was lost or restarted
        raise RuntimeError(f"the Dask scheduler at {address} dropped this submission's run ({exc}): is it still up? "
                           "Grade the class again once it is") from exc
    finally:
        future.release()
