"""The ``interplab`` command: what instructors (and students, for ``check``) run."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from interplab.grading.sandbox import Limits

DEFAULT_SEED = 2026


def _root(args) -> Path:
    from interplab.grading.course import find_root

    return find_root(args.course)


def cmd_build(args) -> int:
    from interplab.grading.build import build, drift

    root = _root(args)
    if args.check:
        problems = drift(root, args.labs or None)
        print("\n".join(problems) if problems else "labs/ is in sync with solutions/.")
        return 1 if problems else 0
    for path in build(root, args.labs or None):
        print(f"wrote {path.relative_to(root)}")
    return 0


def cmd_references(args) -> int:
    from interplab.grading.build import lab_names
    from interplab.grading.course import default_references
    from interplab.grading.references import make_references

    root = _root(args)
    out = Path(args.out) if args.out else default_references(root)
    for lab in args.labs or lab_names(root):
        meta = make_references(root, lab, args.seed, out, workers=args.workers)
        print(f"{lab}: references for seed {args.seed} in {out / lab}; "
              f"{len(meta['mistakes'])} known mistakes fingerprinted")
    if args.seed == DEFAULT_SEED and not args.out:
        print("These use the course's public default seed. For a real class, keep a private seed: "
              "interplab references --seed YOUR_SECRET --out PRIVATE_DIR")
    return 0


def cmd_grade(args) -> int:
    from interplab.grading.grade import grade, summary
    from interplab.grading.sandbox import Sandbox, warnings_for

    limits = Limits(cell_seconds=args.cell_timeout, notebook_seconds=args.notebook_timeout,
                    memory_total_bytes=int(args.memory * 1024**3), memory_bytes=int(args.process_memory * 1024**3),
                    disk_bytes=args.disk * 1024**2,
                    tmp_bytes=args.tmp * 1024**2)
    for warning in warnings_for(Sandbox(limits, isolate=not args.no_sandbox), args.workers):
        print(f"WARNING: {warning}", file=sys.stderr)
    rows = grade(_root(args), args.lab, Path(args.submissions), Path(args.out),
                 references=Path(args.references) if args.references else None, work=args.work,
                 feedback=not args.no_feedback, workers=args.workers, limits=limits, isolate=not args.no_sandbox)
    print(summary(rows))
    print(f"wrote {args.out} ({len(rows)} students)")
    return 0


def cmd_check(args) -> int:
    from interplab.grading.check import check_notebook, format_report

    path = Path(args.notebook)
    if not path.is_file():
        print(f"no such notebook: {path}", file=sys.stderr)
        return 2
    verdicts, problem = check_notebook(path)
    print(format_report(verdicts, problem))
    return 0 if all(v.passed for v in verdicts) else 1


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="interplab", description="Build, check and grade the interplab course.")
    p.add_argument("--course", type=Path, default=None, help="the course folder (default: found from here)")
    sub = p.add_subparsers(dest="command", required=True)

    b = sub.add_parser("build", help="regenerate labs/ from solutions/ (nbgrader generate_assignment)")
    b.add_argument("labs", nargs="*", help="labs to build (default: all)")
    b.add_argument("--check", action="store_true", help="only report whether labs/ is in sync")
    b.set_defaults(func=cmd_build)

    r = sub.add_parser("references", help="regenerate reference outputs by running the solutions")
    r.add_argument("labs", nargs="*", help="labs (default: all)")
    r.add_argument("--seed", type=int, default=DEFAULT_SEED, help="seed of the hidden inputs; keep yours private")
    r.add_argument("--out", help="where the hidden references go (default: autograder/references)")
    r.add_argument("--workers", type=int, default=2, help="notebooks run at once")
    r.set_defaults(func=cmd_references)

    g = sub.add_parser("grade", help="grade a folder of submissions into a CSV")
    g.add_argument("lab", help="e.g. 02_induction")
    g.add_argument("submissions", help="folder of STUDENT.ipynb or STUDENT/<notebook>.ipynb")
    g.add_argument("--out", default="grades.csv", help="the CSV to write")
    g.add_argument("--references", help="hidden references made with your private seed")
    g.add_argument("--work", type=Path, help="nbgrader's working folder (default: autograder/workspace)")
    g.add_argument("--no-feedback", action="store_true", help="skip nbgrader generate_feedback")
    g.add_argument("--workers", type=int, default=1, help="submissions graded at once (one per core is best)")
    g.add_argument("--cell-timeout", type=int, default=Limits.cell_seconds, help="seconds one cell may run")
    g.add_argument("--notebook-timeout", type=int, default=Limits.notebook_seconds, help="seconds one submission may run")
    g.add_argument("--memory", type=float, default=Limits.memory_total_bytes / 1024**3,
                   help="GB one submission may hold in all: its processes and its files (which are in RAM)")
    g.add_argument("--process-memory", type=float, default=Limits.memory_bytes / 1024**3,
                   help="GB of address space per process (torch reserves more than it uses)")
    g.add_argument("--disk", type=int, default=Limits.disk_bytes // 1024**2, help="MB of its private folder")
    g.add_argument("--tmp", type=int, default=Limits.tmp_bytes // 1024**2, help="MB of its /tmp")
    g.add_argument("--no-sandbox", action="store_true", help="run submissions without bubblewrap (limits only)")
    g.set_defaults(func=cmd_grade)

    c = sub.add_parser("check", help="run a notebook's visible checks and print a report")
    c.add_argument("notebook")
    c.set_defaults(func=cmd_check)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except (FileNotFoundError, KeyError, ValueError, RuntimeError) as exc:
        print(f"interplab {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
