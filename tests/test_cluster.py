"""Grading through a Dask cluster (``interplab grade --cluster``, ``interplab.grading.cluster``).

One small class of lab 02 (the solution, the untouched lab, three known mistakes) is graded twice,
once each way (module fixtures): by the built-in pool of 2 processes, and through a LocalCluster of
2 separate worker processes, one of which is killed with SIGKILL while it runs a submission. Both use
a copy of the default references whose ``meta.json`` holds a long secret seed, so that a seed sent to
a worker would be found. While the cluster grades, a worker plugin (``Spy``) saves what each task a
worker starts was given: its task (function and arguments) and the data of the tasks it depends on,
pickled as Dask ships them. The tests then compare the two CSVs, read the gradebook, and search what
the workers received for the seed and the expected outputs.

The other tests are quick: ``local:N`` starts N single-threaded worker processes and stops them;
what the instructor is told when the scheduler cannot be reached or distributed is missing; and a
run's answers folder, however odd, is judged the same after it travelled as data.
"""

from __future__ import annotations

import csv
import json
import os
import secrets
import shutil
import signal
import sys
import threading
import time
import uuid
from pathlib import Path

import cloudpickle
import nbformat
import pytest
import torch
from course import MUTANTS, RELEASED, ROOT, completed_lab
from distributed import Client, LocalCluster, WorkerPlugin
from distributed.protocol.pickle import dumps as dask_dumps
from safetensors import safe_open

from interplab.answers import Case, save_cases
from interplab.exercises import get_lab
from interplab.grading import cluster as remote
from interplab.grading.course import default_references
from interplab.grading.grade import grade
from interplab.grading.trusted import collect_answers, rebuild_answers, verdicts_for
from interplab.reference import HIDDEN, References

LAB = "02_induction"
SPEC = get_lab(LAB)
#: The known mistakes in the class: one whose output is NaN, one in a hook run in the kernel, one read off the wrong diagonal.
KNOWN = ("mask_includes_diagonal", "late_binding", "prev_main_diagonal")
STUDENTS = ["alice", "untouched", *(f"mutant-{name}" for name in KNOWN)]
#: A run killed this many seconds after it started is mid-run: a warm lab-02 run takes about 3 s on an idle machine
#: (benchmarks/README.md), 10 s or more on a loaded one; the killer looks every POLL_SECONDS. (At 3 s, polled every
#: 0.5 s, an idle machine's runs all ended before the killer saw one running.)
KILL_AFTER_SECONDS, POLL_SECONDS = 1.0, 0.1

# The spy and the killer's probe run on the workers, which cannot import this test module: ship them by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="module")
def references(tmp_path_factory) -> tuple[Path, str]:
    """The default references of lab 02 in a folder of their own, with a secret seed in their meta.json."""
    root = tmp_path_factory.mktemp("references")
    shutil.copytree(default_references(ROOT) / LAB, root / LAB)
    seed = secrets.token_hex(16)
    meta = json.loads((root / LAB / "meta.json").read_text())
    (root / LAB / "meta.json").write_text(json.dumps({**meta, "seed": seed}))
    return root, seed


@pytest.fixture(scope="module")
def submissions(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("submissions")
    nbformat.write(completed_lab(), str(folder / "alice.ipynb"))
    shutil.copy(RELEASED, folder / "untouched.ipynb")
    for mutant in MUTANTS:
        if mutant.name in KNOWN:
            nbformat.write(completed_lab(mutant), str(folder / f"mutant-{mutant.name}.ipynb"))
    return folder


@pytest.fixture(scope="module")
def pool(references, submissions, tmp_path_factory) -> dict[str, dict]:
    """The class graded by the built-in pool of 2 processes: its CSV, by student."""
    tmp = tmp_path_factory.mktemp("pool")
    grade(ROOT, LAB, submissions, tmp / "grades.csv", references=references[0], work=tmp / "work", feedback=False,
          workers=2)
    return read_csv(tmp / "grades.csv")


class Spy(WorkerPlugin):
    """Saves, as each task starts on a worker, what that worker was given for it: its task (function and
    arguments) and the data of the tasks it depends on, pickled as Dask pickles them, and who ran it."""

    name = "interplab-spy"

    def __init__(self, folder: Path):
        self.folder = str(folder)

    def setup(self, worker) -> None:
        self.worker = worker

    def transition(self, key, start, finish, **kwargs) -> None:
        if finish != "executing":
            return
        task = self.worker.state.tasks[key]
        given = dask_dumps((task.run_spec, {dep.key: self.worker.data[dep.key] for dep in task.dependencies}))
        name = uuid.uuid4().hex
        Path(self.folder, f"{name}.pkl").write_bytes(given)
        record = {"key": str(key), "worker": self.worker.address, "pid": os.getpid(), "started": time.time()}
        Path(self.folder, f".{name}.json").write_text(json.dumps(record))
        Path(self.folder, f".{name}.json").replace(Path(self.folder, f"{name}.json"))  # whole, for the killer to read


def spied(folder: Path) -> list[dict]:
    """What the spy saved, oldest first."""
    records = [json.loads(p.read_text()) | {"given": p.with_suffix(".pkl")} for p in folder.glob("*.json")]
    return sorted(records, key=lambda r: r["started"])


def _executing(dask_worker) -> list[str]:
    return [str(ts.key) for ts in dask_worker.state.executing]


class Killer:
    """SIGKILLs, once, the worker process that is a few seconds into a submission's run: not the first run
    of a worker (which also starts its warm zygote), but one after those."""

    def __init__(self, client: Client, spy: Path, skip: int):
        self.client, self.spy, self.skip = client, spy, skip
        self.killed: dict | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        passed: set[str] = set()
        while self.killed is None and not self._stop.wait(POLL_SECONDS):
            runs = [r for r in spied(self.spy) if r["key"].startswith("interplab-run-")][self.skip:]
            for run in runs:
                if run["key"] in passed or time.time() - run["started"] < KILL_AFTER_SECONDS:
                    continue
                try:
                    running = self.client.run(_executing, workers=[run["worker"]]).get(run["worker"], [])
                except Exception:  # that worker is gone or restarting
                    running = []
                if run["key"] not in running:
                    passed.add(run["key"])  # over already: wait for another
                    continue
                os.kill(run["pid"], signal.SIGKILL)
                self.killed = run
                return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


@pytest.fixture(scope="module")
def through_cluster(references, submissions, tmp_path_factory) -> dict:
    """The class graded through a LocalCluster of 2 worker processes (one thread each), one of them killed
    mid-run: its CSV by student, the work folder, what the spy saved, and the run that was killed."""
    tmp = tmp_path_factory.mktemp("cluster")
    spy = tmp / "spy"
    spy.mkdir()
    with (LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None)
          as cluster, Client(cluster, set_as_default=False) as client):
        client.register_plugin(Spy(spy))
        killer = Killer(client, spy, skip=2)
        try:
            grade(ROOT, LAB, submissions, tmp / "grades.csv", references=references[0], work=tmp / "work",
                  feedback=False, workers=1, cluster=cluster.scheduler_address)
        finally:
            killer.stop()
    return {"rows": read_csv(tmp / "grades.csv"), "csv": tmp / "grades.csv", "work": tmp / "work",
            "spied": spied(spy), "killed": killer.killed}


def read_csv(path: Path) -> dict[str, dict]:
    with path.open() as f:
        table = list(csv.DictReader(f))
    assert len(table) == len({r["student"] for r in table}), "a student has two rows"
    return {r["student"]: r for r in table}


def test_the_cluster_gives_the_pools_grades(pool, through_cluster):
    """Points, total, status and details of every student, as the built-in pool gave them."""
    assert set(pool) == set(STUDENTS)
    assert pool["alice"]["status"] == "graded" and float(pool["alice"]["total"]) > 0
    columns = [ex.name for ex in SPEC.exercises] + ["total", "status", "details"]
    for student in STUDENTS:
        assert ({c: through_cluster["rows"][student][c] for c in columns}
                == {c: pool[student][c] for c in columns}), student


def test_a_worker_killed_mid_run_costs_a_rerun_elsewhere_and_each_student_is_graded_once(through_cluster):
    killed = through_cluster["killed"]
    assert killed is not None, "no worker was killed mid-run: the test did not test it"
    # the killed run was started again, by another worker process
    again = [r for r in through_cluster["spied"] if r["key"] == killed["key"]]
    assert len(again) >= 2 and {r["pid"] for r in again[1:]} - {killed["pid"]}
    # a whole CSV: every student once, graded
    rows = through_cluster["rows"]
    assert sorted(rows) == sorted(STUDENTS)
    assert all(row["status"] == "graded" for row in rows.values()), {s: r["status"] for s, r in rows.items()}
    # one submission each in the gradebook, one result each
    from nbgrader.api import Gradebook

    work = through_cluster["work"]
    with Gradebook(f"sqlite:///{work / 'gradebook.db'}") as gb:
        submitted = [s.student.id for s in gb.find_assignment(LAB).submissions]
    assert sorted(submitted) == sorted(STUDENTS)
    assert sorted(p.stem for p in (work / "results" / LAB).glob("*.json")) == sorted(STUDENTS)


def test_nothing_of_the_killed_run_outlives_its_worker(through_cluster):
    """Its kernel and runner sat in a cgroup named after the worker's process (``Budget``): none is left there."""
    assert through_cluster["killed"] is not None
    pid = through_cluster["killed"]["pid"]
    left = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and f"interplab-run-{pid}-" in (entry / "cgroup").read_text():
                left.append(entry.name)
        except OSError:
            continue
    assert left == []


def _tensor_bytes(path: Path) -> list[bytes]:
    with safe_open(str(path), framework="pt") as f:
        return [f.get_tensor(k).contiguous().view(-1).view(torch.uint8).numpy().tobytes() for k in f.keys()]


def test_no_seed_and_no_expected_output_reaches_a_worker(references, through_cluster):
    """What every task was given on a worker holds the hidden cases (as a kernel gets them) and the
    notebooks, but not the seed, and no expected output or known mistake's output, as file or as tensor."""
    root, seed = references
    given = [r["given"].read_bytes() for r in through_cluster["spied"]]
    assert len(given) >= len(STUDENTS) + 1  # a run per student, and the task that holds the cases
    cases = root / LAB / "inputs" / HIDDEN
    sent = b"".join((cases / name).read_bytes() for name in sorted(os.listdir(cases)))
    assert any((cases / "repeated_tokens.safetensors").read_bytes() in g for g in given)  # it does see what is sent
    assert not any(seed.encode() in g for g in given)
    secret_files = [*(root / LAB / "expected" / HIDDEN).glob("*.safetensors"),
                    *(root / LAB / "mistakes").glob(f"*/{HIDDEN}/*.safetensors"),
                    *(root / LAB / "inputs" / "judge").glob("*.safetensors")]
    # a tensor that is also a hidden case's argument (an output equal to an input) is sent anyway
    needles = {t for path in secret_files for t in _tensor_bytes(path) if len(t) >= 64 and t not in sent}
    needles |= {path.read_bytes() for path in secret_files}
    assert len(needles) > 50
    found = [n[:16] for n in needles if any(n in g for g in given)]
    assert found == []


def test_local_n_starts_n_single_threaded_worker_processes_and_stops_them(references):
    cases = References.open(references[0], LAB, HIDDEN).arguments_dir
    with remote.connect("local:2", cases) as connection:
        info = connection.client.scheduler_info(n_workers=-1)["workers"]
        pids = set(connection.client.run(os.getpid).values())
        assert connection.threads == 2 and [w["nthreads"] for w in info.values()] == [1, 1]
        assert len(pids) == 2 and os.getpid() not in pids
        assert connection.client.get_dataset(connection.cases) is not None  # the hidden cases, published once
    time.sleep(1)
    assert not [pid for pid in pids if Path(f"/proc/{pid}").exists()]


def test_a_scheduler_that_cannot_be_reached_is_named(references, monkeypatch):
    monkeypatch.setattr(remote, "CONNECT_SECONDS", 2)
    cases = References.open(references[0], LAB, HIDDEN).arguments_dir
    with pytest.raises(RuntimeError, match=r"cannot reach the Dask scheduler at tcp://127\.0\.0\.1:9 .*dask scheduler"):
        remote.connect("tcp://127.0.0.1:9", cases)


def test_without_distributed_the_error_says_what_to_install(references, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if it were not installed
    cases = References.open(references[0], LAB, HIDDEN).arguments_dir
    with pytest.raises(RuntimeError, match=r"pip install 'interplab\[cluster\]'"):
        remote.connect("local:1", cases)
    with pytest.raises(ValueError, match="local:4"):
        remote.local_size("local:many")


def test_an_odd_answers_folder_is_judged_the_same_after_travelling_as_data(tmp_path):
    """What a run leaves (a link, a folder, a FIFO, a file over the limit, a good answer) comes back as data
    (``collect_answers``) and is put back (``rebuild_answers``) so that the judge says what it says of the original."""
    refs = References.open(default_references(ROOT), LAB, HIDDEN)
    first, second, third, fourth, fifth, *_ = [ex.name for ex in SPEC.exercises]
    here = tmp_path / "run" / "answers"
    save_cases(here / HIDDEN, first, [Case(None, "ValueError: no") for _ in refs.expected(first)])
    (here / HIDDEN / f"{second}.safetensors").symlink_to(refs.directory / "expected" / HIDDEN / f"{second}.safetensors")
    (here / HIDDEN / f"{third}.safetensors").mkdir()
    os.mkfifo(here / HIDDEN / f"{fourth}.safetensors")
    with (here / HIDDEN / f"{fifth}.safetensors").open("wb") as f:
        f.truncate(65 * 1024**2)
    data = collect_answers(here, [ex.name for ex in SPEC.exercises])
    assert not any(r.data for r in data.values() if r.kind != "file")  # nothing read through the link or the FIFO
    back = tmp_path / "back" / "answers"
    back.parent.mkdir()
    rebuild_answers(data, back)
    assert verdicts_for(SPEC, refs, back, None) == verdicts_for(SPEC, refs, here, None)
    # a link in place of the whole folder is refused in the same words too
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / "answers").symlink_to(here)
    again = tmp_path / "again"
    again.mkdir()
    rebuild_answers(collect_answers(linked / "answers", [first]), again / "answers")
    assert verdicts_for(SPEC, refs, again / "answers", None) == verdicts_for(SPEC, refs, linked / "answers", None)
