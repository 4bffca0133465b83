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

#: The model each module explores, per tier.
MODELS = {
    "00_tour": {"cpu": "tiny-lm", "gpu": "gpt2-small"},
    "02_induction": {"cpu": "attn-only-2l", "gpu": "gpt2-small"},
    "04_sae": {"cpu": "tiny-lm", "gpu": "gpt2-small"},
}


def current(default: str = "cpu") -> str:
    """The tier named by ``INTERPLAB_TIER``, else ``default``."""
    tier = os.environ.get(TIER_ENV, default).strip().lower()
    if tier not in TIERS:
        raise ValueError(f"{TIER_ENV}={tier!r} is not a tier; use one of {', '.join(TIERS)}")
    return tier


def model_for(module: str, tier: str) -> str:
    """The model name (for ``interplab.models.load``) that ``module`` uses on ``tier``."""
    if tier not in TIERS:
        raise ValueError(f"{tier!r} is not a tier; use one of {', '.join(TIERS)}")
    if module not in MODELS:
        raise KeyError(f"no models are set for module {module!r}; modules: {', '.join(MODELS)}")
    return MODELS[module][tier]
