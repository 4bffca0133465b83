"""Similarity to the published solution: how its thresholds were chosen, and how fast it is.

    python benchmarks/similarity.py [--students 300] [--skip-calibration] [--skip-speed]

**Calibration.** For every lab with a corpus of independently written answers
(``tests/independent/``), it scores each independent answer against the solution's, every pair
of independent answers of the same exercise against each other, and copies of the solution
that carry one known mistake (``autograder/mutants``) with their variables renamed (a copy
edited to look different), for a grid of k-gram lengths ``K``, minimum sizes ``MIN_GRAMS`` and
thresholds ``T``, and prints how many of each are flagged (similarity >= T among those long
enough to judge). Then, at the module's constants, it draws many honest students (one
independent answer per exercise, at random) and prints the distribution of their mean
similarity to the solution and their number of matching exercises, beside students who copied
part of the lab.

**Speed.** It builds a class of ``--students`` lab 02 notebooks (copies of the solution,
disguised; independent answers, renamed; copies with a mistake; untouched stubs; each one's
sources unique), writes them to disk, and times ``compare_notebooks`` (read, normalise,
fingerprint, compare every pair) with cold caches.
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from course import read, release_of, solution_of, strip_markers  # noqa: E402
from disguise import DISGUISES, rename  # noqa: E402
from independent import answers as independent_answers  # noqa: E402
from independent import labs as corpus_labs  # noqa: E402

from interplab.exercises import get_lab  # noqa: E402
from interplab.grading import similarity as S  # noqa: E402
from interplab.grading.references import load_mutants  # noqa: E402


def _notebook_json(path: Path) -> dict:
    return json.loads(path.read_text())


def score_sets(k: int) -> dict[str, list[tuple[int, float, str]]]:
    """(smaller size, similarity, label) for: independent vs solution, independent pairs, edited copies."""
    out: dict[str, list] = {"independent vs solution": [], "independent pairs": [], "edited copies": []}
    for lab in corpus_labs():
        solution = S.answer_cells(_notebook_json(solution_of(lab)))
        given = S.given_grams(_notebook_json(release_of(lab)), k)
        mutants = load_mutants(ROOT, lab)
        by_exercise: dict[str, list] = {}
        for a in independent_answers(lab):
            by_exercise.setdefault(a.exercise, []).append(a)
        for ex, written in by_exercise.items():
            reference = strip_markers(solution[ex])
            sol = S.fingerprint(reference, given[ex], k)
            prints = [(a.style, S.fingerprint(a.source, given[ex], k)) for a in written]
            for style, fp in prints:
                out["independent vs solution"].append(_pair(sol, fp, f"{lab}/{ex}/{style}"))
            for i, (sa, fa) in enumerate(prints):
                for sb, fb in prints[i + 1:]:
                    out["independent pairs"].append(_pair(fa, fb, f"{lab}/{ex}/{sa}~{sb}"))
            for m in mutants:
                if m.exercise == ex and m.find in reference:
                    edited = rename(reference.replace(m.find, m.replace), seed=3)
                    out["edited copies"].append(_pair(sol, S.fingerprint(edited, given[ex], k), f"{lab}/{ex}/{m.name}"))
    return out


def _pair(a: frozenset, b: frozenset, label: str) -> tuple[int, float, str]:
    smaller = min(len(a), len(b))
    return smaller, (len(a & b) / smaller if smaller else 0.0), label


def rates(data: list[tuple[int, float, str]], threshold: float, min_grams: int) -> tuple[int, int, list[str]]:
    judged = [d for d in data if d[0] >= min_grams]
    flagged = [d[2] for d in judged if d[1] >= threshold]
    return len(judged), len(flagged), flagged


def calibrate() -> None:
    print("== Calibration: flagged / judged (of all), by k-gram length K, minimum size MIN and threshold T ==")
    print("   independent answers must not be flagged; copies of the solution with one mistake and renamed")
    print("   variables should be. J = share of edited copies caught - share of independent answers flagged.")
    thresholds = [0.5, 0.6, 0.7, 0.8, 0.9]
    for k in (4, 5, 6):
        sets = score_sets(k)
        for min_grams in (8, 12, 16):
            for t in thresholds:
                ind, pairs, copies = (rates(sets[name], t, min_grams) for name in sets)
                j = copies[1] / max(copies[0], 1) - ind[1] / max(ind[0], 1)
                mark = "  <- the module's constants" if (k, min_grams, t) == (S.K, S.MIN_GRAMS, S.THRESHOLD) else ""
                print(f"K={k} MIN={min_grams:2d} T={t:.2f} | independent vs solution {ind[1]:2d}/{ind[0]:3d} "
                      f"(of {len(sets['independent vs solution'])}) | independent pairs {pairs[1]:2d}/{pairs[0]:3d} "
                      f"(of {len(sets['independent pairs'])}) | edited copies {copies[1]:2d}/{copies[0]:2d} "
                      f"(of {len(sets['edited copies'])}) | J={j:.3f}{mark}")

    sets = score_sets(S.K)
    print(f"\n== At the module's constants (K={S.K}, MIN_GRAMS={S.MIN_GRAMS}, THRESHOLD={S.THRESHOLD}) ==")
    for name, data in sets.items():
        judged, flagged, which = rates(data, S.THRESHOLD, S.MIN_GRAMS)
        scores = sorted(d[1] for d in data if d[0] >= S.MIN_GRAMS)
        print(f"{name}: {flagged}/{judged} flagged ({100 * flagged / max(judged, 1):.1f} %), "
              f"{len(data) - judged} too short to judge; median {statistics.median(scores):.2f}, "
              f"max {max(scores):.2f}")
        if name != "edited copies":
            for label in which:
                print(f"    flagged: {label}")
        else:
            missed = [d for d in data if d[0] >= S.MIN_GRAMS and d[1] < S.THRESHOLD]
            for size, score, label in missed:
                print(f"    missed: {label} ({score:.2f})")
    disguised_copies()
    honest_students()


def disguised_copies() -> None:
    print("\n== Disguised copies of the solution (every disguise of tests/disguise.py) ==")
    for lab in corpus_labs():
        solution = S.answer_cells(_notebook_json(solution_of(lab)))
        given = S.given_grams(_notebook_json(release_of(lab)))
        judged = [ex.name for ex in get_lab(lab).exercises
                  if len(S.fingerprint(strip_markers(solution[ex.name]), given[ex.name])) >= S.MIN_GRAMS]
        lowest = min(S.similarity(S.fingerprint(strip_markers(solution[ex]), given[ex]),
                                  S.fingerprint(f(strip_markers(solution[ex])), given[ex]))
                     for ex in judged for f in DISGUISES.values())
        short = [ex.name for ex in get_lab(lab).exercises if ex.name not in judged]
        print(f"{lab}: {len(judged)} of {len(get_lab(lab).exercises)} exercises judged, lowest score of "
              f"{len(judged) * len(DISGUISES)} disguised copies {lowest:.2f}; too short to judge: {', '.join(short) or 'none'}")


def honest_students(draws: int = 500) -> None:
    print(f"\n== Whole-lab view: {draws} honest students per lab (one independent answer per exercise, at random) ==")
    rng = random.Random(0)
    for lab in corpus_labs():
        exercises = [ex.name for ex in get_lab(lab).exercises]
        solution = S.answer_cells(_notebook_json(solution_of(lab)))
        pool: dict[str, list[str]] = {}
        for a in independent_answers(lab):
            pool.setdefault(a.exercise, []).append(a.source)
        students = {f"honest{i}": {ex: rng.choice(pool[ex]) for ex in exercises} for i in range(draws)}
        for share in (0.25, 0.5, 1.0):
            copied = rng.sample(exercises, round(share * len(exercises)))
            students[f"copies {share:.0%}"] = {ex: strip_markers(solution[ex]) if ex in copied else rng.choice(pool[ex])
                                                for ex in exercises}
        report = S.compare(students, solution, exercises, S.given_grams(_notebook_json(release_of(lab))))
        honest = [report.students[f"honest{i}"] for i in range(draws)]
        means = sorted(s.solution_mean for s in honest if s.solution_mean is not None)
        matches = [len(s.solution_matches) for s in honest]
        peers = sorted(s.classmate_mean for s in honest if s.classmate_mean is not None)
        flagged = sum(1 for s in honest if "solution" in s.flag)
        print(f"{lab}: honest mean similarity to the solution: median {statistics.median(means):.2f}, "
              f"99th percentile {means[int(0.99 * len(means))]:.2f}, max {means[-1]:.2f}; students by number of "
              "matching exercises: " + ", ".join(f"{n}: {matches.count(n)}" for n in sorted(set(matches)))
              + f"; flagged (>= {S.FLAG_MATCHES} matches): {flagged} of {draws}")
        print(f"    (honest students drawn from {sum(len(v) for v in pool.values())} answers repeat each other's, so "
              f"their classmate scores, median {statistics.median(peers):.2f}, say nothing here)")
        for share in (0.25, 0.5, 1.0):
            s = report.students[f"copies {share:.0%}"]
            print(f"    a student who copied {share:.0%} of the exercises: mean {s.solution_mean:.2f}, "
                  f"{len(s.solution_matches)} matching exercises, {'flagged' if 'solution' in s.flag else 'not flagged'}")


def make_class(folder: Path, n: int, lab: str = "02_induction") -> None:
    """``n`` notebooks of ``lab``, each answer a disguised copy, an independent answer, a copy with
    a mistake or the untouched stub; every source unique (a comment names its student)."""
    rng = random.Random(1)
    release = read(release_of(lab))
    solution = S.answer_cells(_notebook_json(solution_of(lab)))
    pool: dict[str, list[str]] = {}
    for a in independent_answers(lab):
        pool.setdefault(a.exercise, []).append(a.source)
    mutants = load_mutants(ROOT, lab)
    disguises = list(DISGUISES.values())
    folder.mkdir(parents=True)
    for i in range(n):
        nb = copy.deepcopy(release)
        for cell in nb.cells:
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id", "")
            if not grade_id.startswith("answer_"):
                continue
            ex = grade_id.removeprefix("answer_")
            reference = strip_markers(solution[ex])
            kind = rng.random()
            if kind < 0.3:
                source = rng.choice(disguises)(reference)
            elif kind < 0.8:
                source = rename(rng.choice(pool[ex]), seed=i)
            elif kind < 0.9:
                fits = [m for m in mutants if m.exercise == ex and m.find in reference]
                source = reference.replace(fits[0].find, fits[0].replace) if fits else reference
            else:
                continue  # left untouched
            cell.source = f"# student {i}\n{source}"
        nbformat.write(nb, str(folder / f"student{i:03d}.ipynb"))


def speed(n: int) -> None:
    print(f"\n== Speed: a class of {n} lab 02 notebooks ==")
    exercises = [ex.name for ex in get_lab("02_induction").exercises]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "class"
        make_class(folder, n)
        submissions = {p.stem: p for p in sorted(folder.glob("*.ipynb"))}
        timings, cpu = [], []
        for _ in range(3):
            S.fingerprint.cache_clear()
            S._snippet_grams.cache_clear()
            start, start_cpu = time.perf_counter(), time.process_time()
            report = S.compare_notebooks(submissions, solution_of("02_induction"), release_of("02_induction"), exercises)
            timings.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
        pairs = n * (n - 1) // 2 * len(exercises)
        print(f"compare_notebooks, cold caches, 3 runs: wall best {min(timings):.2f} s, median "
              f"{statistics.median(timings):.2f} s; CPU best {min(cpu):.2f} s ({n} students x {len(exercises)} "
              f"exercises = {n * len(exercises)} answers, {pairs} pairs of answers, plus each against the solution)")
        print("(on a shared machine the wall time is the CPU time stretched by the load: compare both)")
        judged = sum(1 for a in report.answers if a.grams >= S.MIN_GRAMS)
        print(f"answers long enough to judge: {judged} of {len(report.answers)}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--students", type=int, default=300)
    p.add_argument("--skip-calibration", action="store_true")
    p.add_argument("--skip-speed", action="store_true")
    args = p.parse_args()
    if not args.skip_calibration:
        calibrate()
    if not args.skip_speed:
        speed(args.students)


if __name__ == "__main__":
    main()
