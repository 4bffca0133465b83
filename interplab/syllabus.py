"""The course's modules, in order: the one manifest every other list of modules derives from.

Each entry says where the module's lesson lives, its lab (the folder under ``solutions/`` and
``labs/``, the notebook's name, and the module of ``interplab.exercises`` that specifies its
grading) and the model it explores on each tier. Everything that names the modules reads it:
the README's module table, the course site's table of contents, ``interplab start``, the labs the
grader knows (``interplab.exercises.get_lab``) and the tiers' models (``interplab.tiers``). A
module is *built* once its lesson exists; its row then links the lesson and lab found on disk, so
the table cannot claim a module that is not there or miss one that is (``tests/test_course.py``
holds the README to it, and ``tests/test_manifest.py`` says, by path, what a listed module lacks).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Module:
    number: str
    title: str
    #: The lesson notebook, relative to the course root.
    lesson: str
    #: The lab's folder under ``labs/`` and ``solutions/`` (its name is the lab's name), or None for a lesson-only module.
    lab: str | None
    #: What the student does, in one line (the syllabus says more).
    summary: str
    #: The lab's notebook, ``solutions/<lab>/<notebook>.ipynb`` (and the same under ``labs/``).
    notebook: str | None = None
    #: The module of ``interplab.exercises`` holding the lab's ``LAB`` spec (its exercises and their inputs).
    spec: str | None = None
    #: The model the module explores on each tier (names for ``interplab.models.load``); None where it has none.
    cpu_model: str | None = None
    gpu_model: str | None = None

    def lesson_path(self, root: Path) -> Path:
        return root / self.lesson

    def built(self, root: Path) -> bool:
        return self.lesson_path(root).is_file()

    def lab_notebooks(self, root: Path) -> list[Path]:
        """The lab's student notebooks (empty when the module has no lab, or it is not built yet)."""
        return sorted((root / "labs" / self.lab).glob("*.ipynb")) if self.lab else []


MODULES: tuple[Module, ...] = (
    Module("00", "Tour", "lessons/00_tour.ipynb", None,
           "load a model on either tier, run it with a cache, hook it, plot attention, a first logit lens",
           cpu_model="tiny-lm", gpu_model="gpt2-small"),
    Module("01", "Features", "lessons/01_features.ipynb", "01_features",
           "find a feature direction, check it against ground truth, neurons versus directions",
           notebook="features", spec="features", cpu_model="tiny-lm", gpu_model="gpt2-small"),
    Module("02", "Circuits: induction heads", "lessons/02_induction_heads.ipynb", "02_induction",
           "detect heads, score induction, attribute logits, ablate, read the OV and QK circuits",
           notebook="induction_heads", spec="induction", cpu_model="attn-only-2l", gpu_model="gpt2-small"),
    Module("03", "Superposition", "lessons/03_superposition.ipynb", "03_superposition",
           "train toy models of superposition, sweep sparsity and importance, measure feature geometry",
           notebook="superposition", spec="superposition"),
    Module("04", "Sparse autoencoders", "lessons/04_sparse_autoencoders.ipynb", "04_sae",
           "train L1 and TopK SAEs, measure them, recover known features",
           notebook="sparse_autoencoders", spec="sae", cpu_model="tiny-lm", gpu_model="gpt2-small"),
    Module("05", "Probing", "lessons/05_probing.ipynb", "05_probing",
           "probe each layer for a hidden state, control for selectivity, intervene along the probe",
           notebook="probing", spec="probing", cpu_model="tiny-lm", gpu_model="gpt2-small"),
    Module("06", "Activation patching", "lessons/06_activation_patching.ipynb", "06_patching",
           "patch the residual stream and heads (q, k, v, pattern); attribution and path patching; a circuit's faithfulness",
           notebook="activation_patching", spec="patching", cpu_model="ioi-3l", gpu_model="gpt2-small"),
    Module("07", "Steering and auditing (capstone)", "lessons/07_steering_auditing.ipynb", "07_auditing",
           "find a planted behaviour, steer or ablate it away, monitor it from activations",
           notebook="auditing", spec="auditing", cpu_model="organism", gpu_model="qwen2.5-0.5b-instruct"),
    Module("08", "Circuit tracing", "lessons/08_circuit_tracing.ipynb", "08_circuits",
           "train transcoders, build a local replacement model and its attribution graph, prune by influence, check by ablation",
           notebook="circuits", spec="circuits", cpu_model="tiny-lm", gpu_model="gpt2-small"),
)

def graded_labs() -> tuple[Module, ...]:
    """The modules whose lab is graded (its spec is named), in order."""
    return tuple(m for m in MODULES if m.lab is not None and m.spec is not None)


TABLE_START, TABLE_END = "<!-- modules: generated by `interplab syllabus --write`; do not edit by hand -->", "<!-- /modules -->"


def module(name: str) -> Module:
    """A module by number (``"02"``), lab name (``"02_induction"``) or lesson stem."""
    for m in MODULES:
        if name in (m.number, m.lab, Path(m.lesson).stem):
            return m
    known = ", ".join(f"{m.number} ({m.lab or Path(m.lesson).stem})" for m in MODULES)
    raise KeyError(f"no module {name!r} in the syllabus; the modules are: {known}")


def readme_table(root: Path) -> str:
    """The README's module table: built modules link their notebooks (on GitHub and on Colab,
    from the course's Colab source), the others say they are in preparation."""
    from interplab.colab import Source

    source = Source.read(root)

    def links(kind: str, path: str) -> str:
        return f"[{kind}]({path}) ([Colab]({source.badge_url(path)}))"

    rows = ["| # | module | lesson | lab |", "|---|---|---|---|"]
    for m in MODULES:
        if not m.built(root):
            rows.append(f"| {m.number} | {m.title} | *in preparation* | *in preparation* |")
            continue
        labs = [p.relative_to(root).as_posix() for p in m.lab_notebooks(root)]
        lab = " · ".join(links("lab", p) for p in labs) if labs else (
            "(lesson only)" if m.lab is None else "*in preparation*")
        rows.append(f"| {m.number} | {m.title} | {links('lesson', m.lesson)} | {lab} |")
    return "\n".join(rows)


def with_table(readme: str, table: str) -> str:
    """``readme`` with the text between the table's markers replaced by ``table``."""
    pattern = re.compile(re.escape(TABLE_START) + r".*?" + re.escape(TABLE_END), flags=re.S)
    if not pattern.search(readme):
        raise ValueError(f"the README has no module table markers ({TABLE_START} ... {TABLE_END})")
    return pattern.sub(lambda _: f"{TABLE_START}\n{table}\n{TABLE_END}", readme)
