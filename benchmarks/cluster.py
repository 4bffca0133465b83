"""Grading through Dask against the built-in pool: one class of lab 02, two workers each way.

    python benchmarks/cluster.py [--students 8] [--rounds 1]

Makes a class of lab 02 submissions (the solution and each known mistake in turn, as
``benchmarks/grading.py`` does) and grades it, feedback included, twice per round:

- **pool**: ``interplab grade --workers 2``, the built-in pool of 2 grading processes, each
  running its submissions in the sandbox itself;
- **cluster**: ``interplab grade --cluster ADDRESS`` against a ``LocalCluster`` of 2 worker
  processes with one thread each, started here and counted in the time (what ``--cluster local:2``
  does; the script starts it itself to tell its processes from the grading ones): 2 grading
  processes judge here, the sandboxed runs are Dask tasks on the workers.

It prints seconds and submissions per minute for each, whether both gave every student the same
points, and the largest proportional set size (PSS, sampled twice a second) of each kind of process
this script starts: a grading process (nbgrader, judging; in the pool, its runs' warm zygote apart),
and a Dask worker process (the runs and their zygotes apart). With several rounds the two take turns,
so that a change in the machine's load falls on both. The figures are wall-clock: run it on an otherwise
idle machine, or say how loaded it was (the load average is printed).
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))
LAB = "02_induction"
MiB = 1024**2


def _children() -> dict[int, list[int]]:
    """Parent pid -> child pids, for every process on the host."""
    found: dict[int, list[int]] = defaultdict(list)
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat", "rb") as f:
                    found[int(f.read().rsplit(b")", 1)[1].split()[1])].append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return found


def _pss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class Peaks:
    """The largest PSS of this script's direct child processes while it lasts, each on its own; ``kind``
    says which of them are Dask workers (the rest are grading processes)."""

    def __init__(self) -> None:
        self.peak: dict[int, int] = {}
        self.workers: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        me = os.getpid()
        while not self._stop.wait(0.5):
            for pid in _children().get(me, []):
                self.peak[pid] = max(self.peak.get(pid, 0), _pss(pid))

    def largest(self, workers: bool) -> int:
        return max((p for pid, p in self.peak.items() if (pid in self.workers) == workers), default=0)

    def __enter__(self) -> Peaks:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def totals(path: Path) -> dict[str, str]:
    with path.open() as f:
        return {row["student"]: row["total"] for row in csv.DictReader(f)}


def time_pool(submissions: Path, tmp: Path) -> tuple[float, dict[str, str], Peaks]:
    from interplab.grading.grade import grade

    with Peaks() as peaks:
        start = time.perf_counter()
        rows = grade(ROOT, LAB, submissions, tmp / "pool.csv", work=tmp / "work-pool", workers=2)
        elapsed = time.perf_counter() - start
    assert all(r.status == "graded" for r in rows), [r.status for r in rows]
    return elapsed, totals(tmp / "pool.csv"), peaks


def time_cluster(submissions: Path, tmp: Path) -> tuple[float, dict[str, str], Peaks]:
    from distributed import Client, LocalCluster

    from interplab.grading.grade import grade

    with Peaks() as peaks:
        start = time.perf_counter()
        with (LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address=None) as cluster, Client(cluster, set_as_default=False) as client):
            peaks.workers = set(client.run(os.getpid).values())
            rows = grade(ROOT, LAB, submissions, tmp / "cluster.csv", work=tmp / "work-cluster", workers=2,
                         cluster=cluster.scheduler_address)
        elapsed = time.perf_counter() - start
    assert all(r.status == "graded" for r in rows), [r.status for r in rows]
    return elapsed, totals(tmp / "cluster.csv"), peaks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--students", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=1, help="pool then cluster, this many times")
    args = parser.parse_args()
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("TQDM_DISABLE", "1")
    from grading import make_class

    load = os.getloadavg()
    times: dict[str, list[float]] = defaultdict(list)
    memory: dict[str, int] = defaultdict(int)
    same = True
    with tempfile.TemporaryDirectory(prefix="interplab-bench-") as tmp:
        tmp = Path(tmp)
        make_class(tmp / "submissions", args.students)
        for i in range(args.rounds):
            pool, pool_totals, pool_peaks = time_pool(tmp / "submissions", tmp / f"round{i}")
            remote, remote_totals, remote_peaks = time_cluster(tmp / "submissions", tmp / f"round{i}")
            times["pool"].append(pool)
            times["cluster"].append(remote)
            same &= pool_totals == remote_totals
            memory["pool grading process"] = max(memory["pool grading process"], pool_peaks.largest(False))
            memory["cluster grading process"] = max(memory["cluster grading process"], remote_peaks.largest(False))
            memory["Dask worker process"] = max(memory["Dask worker process"], remote_peaks.largest(True))
    print(f"{args.students} submissions of lab 02, {os.cpu_count()} cores, load average {load[0]:.1f} / {load[1]:.1f} "
          f"/ {load[2]:.1f} (1 / 5 / 15 min) at the start; {args.rounds} round(s)")
    for name, label in (("pool", "built-in pool, 2 workers"), ("cluster", "LocalCluster, 2 worker processes")):
        for s in times[name]:
            print(f"{label:<34} {s:7.1f} s   {60 * args.students / s:6.1f} submissions/min")
    print(f"cluster / pool time: {', '.join(f'{c / p:.2f}' for p, c in zip(times['pool'], times['cluster']))}; "
          f"the same points for every student both ways: {same}")
    for name, size in memory.items():
        print(f"largest PSS of one {name}: {size / MiB:.0f} MiB")


if __name__ == "__main__":
    main()
