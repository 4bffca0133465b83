"""The course's one setting: the tier, which picks the model each module explores.

``cpu`` (the default) runs offline on a laptop with the small models the course trains and
ships; ``gpu`` loads real pretrained models (GPT-2 small), which needs internet and is meant
for Colab or a local GPU. Graded checks always use the shipped CPU-tier models, so a lab is
graded the same way whichever tier the student explores with.
"""

from __future__ import annotations

import os

TIERS = ("cpu", "gpu")
TIER_ENV = "INTERPLAB_TIER"


def current(default: str = "cpu") -> str:
    """The tier named by ``INTERPLAB_TIER``, else ``default``."""
    tier = os.environ.get(TIER_ENV, default).strip().lower()
    if tier not in TIERS:
        raise ValueError(f"{TIER_ENV}={tier!r} is not a tier; use one of {', '.join(TIERS)}")
    return tier


def model_for(module: str, tier: str) -> str:
    """The model name (for ``interplab.models.load``) that ``module`` (a number, lab or lesson name) uses on
    ``tier``, as the syllabus says."""
    from interplab.syllabus import MODULES
    from interplab.syllabus import module as find

    if tier not in TIERS:
        raise ValueError(f"{tier!r} is not a tier; use one of {', '.join(TIERS)}")
    name = getattr(find(module), f"{tier}_model")
    if name is None:
        with_models = ", ".join(m.lab or m.number for m in MODULES if m.cpu_model)
        raise KeyError(f"module {module!r} explores no model of its own on the {tier} tier; modules with models: {with_models}")
    return name
