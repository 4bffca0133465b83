"""``interplab site``: the course as a static website, readable with no kernel.

Every lesson is executed once on the CPU tier and rendered with its figures and interactive
attention patterns, beside the syllabus and the instructor's guide (``docs/``), by Sphinx with
MyST-NB (the engine of Jupyter Book 1). Sphinx's settings are ``docs/conf.py``; the pages come
from a staging folder this module lays out (``build/site-src/``), so nothing generated is kept
next to the sources.

Executed lessons are cached in ``build/executed/``, keyed by the lesson's bytes and the
package's files, so a second build (or a build after ``make test``, which executes the lessons
into the same cache) runs none again unless something they depend on changed.
"""

from __future__ import annotations

import hashlib
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat

from interplab.grading.execute import run_notebook
from interplab.grading.sandbox import Limits
from interplab.syllabus import MODULES

PACKAGE = Path(__file__).resolve().parent
#: Lessons are the course's own code: they may print the whole 1.3 MB circuitsvis bundle per pattern,
#: and a cell may take minutes on a busy machine (their speed is measured by benchmarks/, not here).
LESSON_LIMITS = Limits(cell_seconds=900, notebook_seconds=3600, output_bytes=64 * 1024**2)
#: The CPU tier, and Jupyter's inline figures (the grader's runs use Agg, which shows none).
LESSON_ENV = {"INTERPLAB_TIER": "cpu", "MPLBACKEND": "module://matplotlib_inline.backend_inline"}


def site_dir(root: Path) -> Path:
    return root / "build" / "site"


def cache_dir(root: Path) -> Path:
    return root / "build" / "executed"


def _package_digest() -> str:
    """A digest of the installed package's files: a retrained model or changed helper invalidates the cache."""
    digest = hashlib.sha256()
    for path in sorted(PACKAGE.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(path.relative_to(PACKAGE).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def lesson_errors(nb: nbformat.NotebookNode) -> list[str]:
    """Every error a cell of an executed notebook raised, as 'cell N: Name: message'."""
    return [f"cell {i}: {o.get('ename')}: {o.get('evalue')}" for i, c in enumerate(nb.cells) if c.cell_type == "code"
            for o in c.get("outputs", []) if o.get("output_type") == "error"]


def execute_lesson(lesson: Path, cache: Path, force: bool = False, package: str | None = None) -> Path:
    """The lesson executed on the CPU tier, from the cache or run now; raises if any cell fails."""
    key = hashlib.sha256(lesson.read_bytes() + (package or _package_digest()).encode()).hexdigest()[:16]
    out = cache / f"{lesson.stem}-{key}.ipynb"
    if out.is_file() and not force:
        return out
    cache.mkdir(parents=True, exist_ok=True)
    partial = out.with_suffix(".running.ipynb")
    run = run_notebook(lesson, partial, cwd=lesson.parent, env=LESSON_ENV, limits=LESSON_LIMITS)
    problems = [run.problem] if run.problem else lesson_errors(run.notebook)
    if problems:
        raise RuntimeError(f"{lesson.name} did not run cleanly: " + "; ".join(problems))
    for stale in cache.glob(f"{lesson.stem}-*.ipynb"):  # older versions of this lesson
        if stale != partial:
            stale.unlink()
    partial.replace(out)
    partial.with_suffix(".log").unlink(missing_ok=True)
    return out


def execute_lessons(root: Path, workers: int = 2, force: bool = False) -> dict[Path, Path]:
    """Every lesson, executed (or taken from the cache): {lesson: executed notebook}."""
    lessons = sorted((root / "lessons").glob("*.ipynb"))
    package = _package_digest()
    with ThreadPoolExecutor(max(1, workers)) as pool:  # each lesson runs in its own kernel process
        done = pool.map(lambda p: execute_lesson(p, cache_dir(root), force, package), lessons)
        return dict(zip(lessons, done))


def index_page(root: Path) -> str:
    """The site's front page: what the course is, and its modules linked to their lessons (here) and
    labs (on Colab, from the course's Colab source)."""
    from interplab.colab import Source

    source = Source.read(root)
    rows = []
    for m in MODULES:
        if m.built(root):
            lesson = f"[{m.title}](lessons/{Path(m.lesson).stem}.ipynb)"
            labs = [p.relative_to(root).as_posix() for p in m.lab_notebooks(root)]
            lab = " · ".join(f"[open in Colab]({source.badge_url(p)})" for p in labs) if labs else (
                "lesson only" if m.lab is None else "")
        else:
            lesson, lab = f"{m.title} *(in preparation)*", ""
        rows.append(f"| {m.number} | {lesson} | {m.summary} | {lab} |")
    built = [f"lessons/{Path(m.lesson).stem}" for m in MODULES if m.built(root)]
    return "\n".join([
        "# interplab",
        "",
        "A hands-on course in mechanistic interpretability. Each module is a **lesson**, shown here executed with",
        "its figures and interactive attention patterns, and most have a **lab** of exercises that check themselves",
        "as you go and are graded automatically. Everything runs offline on a laptop CPU with small models the course",
        "trains and ships; the same notebooks run on a GPU with GPT-2 small.",
        "",
        "| # | lesson | what you do | lab |",
        "|---|---|---|---|",
        *rows,
        "",
        "To run the notebooks yourself, clone the course and run `make lab`, or open one on Colab from its badge.",
        "",
        "```{toctree}",
        ":caption: Course",
        ":maxdepth: 1",
        "",
        "syllabus",
        "instructors",
        "```",
        "",
        "```{toctree}",
        ":caption: Lessons",
        ":maxdepth: 1",
        "",
        *built,
        "```",
        "",
    ])


def stage(root: Path, executed: dict[Path, Path], src: Path) -> Path:
    """Lay out the site's sources in ``src``: the front page, docs/ and the executed lessons."""
    if src.exists():
        shutil.rmtree(src)
    (src / "lessons").mkdir(parents=True)
    (src / "index.md").write_text(index_page(root))
    for page in sorted((root / "docs").glob("*.md")):
        shutil.copyfile(page, src / page.name)
    for lesson, done in executed.items():
        shutil.copyfile(done, src / "lessons" / lesson.name)
    return src


def build_site(root: Path, out: Path | None = None, workers: int = 2, executed: dict[Path, Path] | None = None) -> Path:
    """Execute the lessons (unless given) and build the HTML site into ``out`` (default build/site)."""
    from sphinx.cmd.build import build_main

    out = out or site_dir(root)
    executed = executed if executed is not None else execute_lessons(root, workers)
    src = stage(root, executed, root / "build" / "site-src")
    status = build_main(["-b", "html", "-q", "-c", str(root / "docs"), "-d", str(root / "build" / "doctrees"),
                         str(src), str(out)])
    if status != 0:
        raise RuntimeError(f"Sphinx could not build the site (exit status {status}); see the messages above")
    return out
