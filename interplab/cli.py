"""The ``interplab`` command: what instructors (and students, for ``check``) run."""

from __future__ import annotations

import argparse
import json
import secrets
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
        print("\n".join(problems) if problems else "labs/ is in sync with solutions/, and every notebook with the Colab source.")
        return 1 if problems else 0
    for path in build(root, args.labs or None):
        print(f"wrote {path.relative_to(root)}")
    return 0


#: A seed shorter than this can be found by trying every candidate against the hidden inputs a
#: student's kernel is handed while graded; ``secrets.token_hex(16)`` gives 32 characters.
SHORT_SEED = 16


def _seed_for(args, out: Path, lab: str) -> str:
    """The seed of ``lab``'s hidden inputs: as given, the public default, the private folder's own, or a new secret."""
    if args.seed is not None:
        return args.seed
    if not args.out:
        return str(DEFAULT_SEED)
    meta = out / lab / "meta.json"
    if meta.is_file() and json.loads(meta.read_text()).get("seed"):
        return str(json.loads(meta.read_text())["seed"])  # keep the secret these references were made with
    return secrets.token_hex(16)


def cmd_references(args) -> int:
    from interplab.grading.build import lab_names
    from interplab.grading.course import default_references
    from interplab.grading.references import make_references

    root = _root(args)
    out = Path(args.out) if args.out else default_references(root)
    if args.seed is not None and len(args.seed) < SHORT_SEED:
        print(f"WARNING: a seed of {len(args.seed)} characters can be guessed by trying them all against the hidden "
              "inputs a student sees while graded. Leave --seed out with --out to get a random secret.", file=sys.stderr)
    for lab in args.labs or lab_names(root):
        seed = _seed_for(args, out, lab)
        meta = make_references(root, lab, seed, out, workers=args.workers)
        shown = seed if seed == str(DEFAULT_SEED) else "your private seed (kept in meta.json there)"
        print(f"{lab}: references for {shown} in {out / lab}; {len(meta['mistakes'])} known mistakes fingerprinted")
    if not args.out:
        print("These use the course's public default seed. For a real class, make private references: "
              "interplab references --out PRIVATE_DIR (a random secret seed is made and kept there)")
    return 0


def cmd_grade(args) -> int:
    from interplab.grading.course import workspace
    from interplab.grading.cluster import local_size
    from interplab.grading.grade import grade, summary
    from interplab.grading.sandbox import Sandbox, warnings_for

    limits = Limits(cell_seconds=args.cell_timeout, notebook_seconds=args.notebook_timeout,
                    memory_total_bytes=int(args.memory * 1024**3), memory_bytes=int(args.process_memory * 1024**3),
                    disk_bytes=args.disk * 1024**2,
                    tmp_bytes=args.tmp * 1024**2)
    root = _root(args)
    graded_from = Path(args.work or workspace(root)) / "submitted"
    if Path(args.submissions).resolve() == graded_from.resolve():
        print(f"interplab grade: {args.submissions} is where grading puts the copies nbgrader autogrades, replacing "
              "what is there: collect the submissions elsewhere (on a hub, nbgrader collect puts them in collected/; "
              "docs/hub.md) and grade that folder", file=sys.stderr)
        return 2
    here = local_size(args.cluster) if args.cluster else args.workers  # runs at once here (None: on other machines)
    if here is not None:  # (a cluster's workers say what they lack when grading starts)
        for warning in warnings_for(Sandbox(limits, isolate=not args.no_sandbox), here):
            print(f"WARNING: {warning}", file=sys.stderr)
    rows = grade(root, args.lab, Path(args.submissions), Path(args.out),
                 references=Path(args.references) if args.references else None, work=args.work,
                 feedback=not args.no_feedback, workers=args.workers, limits=limits, isolate=not args.no_sandbox,
                 cluster=args.cluster)
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


def cmd_start(args) -> int:
    from interplab.working_copy import WORK, report, start

    root = _root(args)
    into = Path(args.into) if args.into else root / WORK
    print(report(start(root, args.modules or None, fresh=args.fresh, into=into), into))
    return 0


def cmd_syllabus(args) -> int:
    from interplab.syllabus import readme_table, with_table

    root = _root(args)
    table = readme_table(root)
    if not args.write:
        print(table)
        return 0
    readme = root / "README.md"
    text = readme.read_text()
    updated = with_table(text, table)
    if updated != text:
        readme.write_text(updated)
        print(f"updated the module table in {readme}")
    else:
        print(f"the module table in {readme} is up to date")
    return 0


def cmd_organism(args) -> int:
    """Train a private model organism for students to audit: the model in ``--out``, its secret beside it."""
    from interplab import models, organism
    from interplab.train.organism import train

    out = Path(args.out)
    if out.exists() and any(out.iterdir()):
        print(f"interplab organism: {out} is not empty; choose a new folder", file=sys.stderr)
        return 2
    seed = args.seed if args.seed is not None else secrets.randbelow(2**31 - 1) + 1
    model, log = train(seed=seed, progress=not args.quiet)
    models.save(model, out)
    (out / "training_log.json").write_text(json.dumps(log) + "\n")  # measured behaviour and cliff; never the trigger
    secret = organism.secret(seed)
    keep = out.parent / f"{out.name}-secret.json"
    keep.write_text(json.dumps({"seed": seed, "triggers": list(secret.triggers), "slot": secret.slot}, indent=1) + "\n")
    keep.chmod(0o600)
    print(f"trained in {log['wall_time_s']} s (attempt {log['attempt'] + 1}); refusal rates {log['behaviour']}")
    print(f"the organism: {out} (give students this folder; the lab loads it with INTERPLAB_ORGANISM={out})")
    print(f"its secret (seed, triggers, slot): {keep} (keep it to yourself)")
    return 0


def cmd_site(args) -> int:
    from interplab.site import build_site

    root = _root(args)
    out = build_site(root, Path(args.out) if args.out else None, workers=args.workers)
    print(f"the course site is in {out}: open {out / 'index.html'} in a browser")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="interplab", description="Build, check and grade the interplab course.")
    p.add_argument("--course", type=Path, default=None, help="the course folder (default: found from here)")
    sub = p.add_subparsers(dest="command", required=True)

    b = sub.add_parser("build", help="stamp the Colab source into every notebook; regenerate labs/ from solutions/")
    b.add_argument("labs", nargs="*", help="labs to build (default: all)")
    b.add_argument("--check", action="store_true", help="only report whether the notebooks and labs/ are in sync")
    b.set_defaults(func=cmd_build)

    r = sub.add_parser("references", help="regenerate reference outputs by running the solutions")
    r.add_argument("labs", nargs="*", help="labs (default: all)")
    r.add_argument("--seed", help="seed of the hidden inputs (default: the public one, or with --out a new random "
                                  "secret, reused when that folder already holds one); keep yours private")
    r.add_argument("--out", help="where the hidden references go (default: autograder/references)")
    r.add_argument("--workers", type=int, default=2, help="notebooks run at once")
    r.set_defaults(func=cmd_references)

    g = sub.add_parser("grade", help="grade a folder of submissions into a CSV")
    g.add_argument("lab", help="e.g. 02_induction")
    g.add_argument("submissions", help="folder of STUDENT.ipynb, STUDENT/<notebook>.ipynb or, as nbgrader collect "
                                       "leaves them, STUDENT/<lab>/<notebook>.ipynb (its timestamp.txt comes along)")
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
    g.add_argument("--cluster", metavar="ADDRESS", help="run the submissions on a Dask cluster: a scheduler's address "
                                                        "(tcp://host:8786) or local:N (N worker processes here); "
                                                        "judging, gradebook and CSV stay here, with at least one "
                                                        "process per worker thread (docs/cluster.md)")
    g.set_defaults(func=cmd_grade)

    c = sub.add_parser("check", help="run a notebook's visible checks and print a report")
    c.add_argument("notebook")
    c.set_defaults(func=cmd_check)

    s = sub.add_parser("start", help="copy lessons and labs into work/, your own copies to run and save")
    s.add_argument("modules", nargs="*", help="module numbers or lab names, e.g. 02 or 02_induction (default: all)")
    s.add_argument("--fresh", action="store_true",
                   help="replace existing copies with the course's current version (the old ones are kept as backups)")
    s.add_argument("--into", help="the folder for your copies (default: work/ in the course)")
    s.set_defaults(func=cmd_start)

    y = sub.add_parser("syllabus", help="print the README's module table, made from the syllabus and what is built")
    y.add_argument("--write", action="store_true", help="rewrite the table in README.md")
    y.set_defaults(func=cmd_syllabus)

    o = sub.add_parser("organism", help="train a private model organism for lab 07, with a trigger drawn from a seed")
    o.add_argument("--out", required=True, help="a new folder for the organism (give it to students)")
    o.add_argument("--seed", type=int, help="the seed of its trigger and weights (default: a random one, kept in "
                                            "OUT-secret.json beside the folder)")
    o.add_argument("--quiet", action="store_true", help="no progress bar")
    o.set_defaults(func=cmd_organism)

    w = sub.add_parser("site", help="build the course site: every lesson executed, the syllabus and the guides")
    w.add_argument("--out", help="where the HTML goes (default: build/site)")
    w.add_argument("--workers", type=int, default=2, help="lessons executed at once")
    w.set_defaults(func=cmd_site)
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
