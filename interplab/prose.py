"""Prose that cannot drift from the numbers beside it.

A lesson's text must never say what its output does not show. So a sentence that quotes a
number is written by the cell that computes it, and a qualitative claim ("most heads...",
"higher than the baseline") is checked by the cell that shows it:

    say(f"The strongest induction head, {name}, scores **{score:.2f}**.")
    claim(score > baseline, f"It is far above the random baseline ({baseline:.2f}).")

``say`` renders Markdown. ``claim`` renders it too, but only if the condition holds; otherwise
it raises ``ClaimFailed``, so a retrained model or a changed seed that falsifies the text
fails the notebook (and the test that runs it) instead of leaving a false sentence behind.
Where a notebook runs a model the course cannot test (the GPU tier's pretrained models),
``claim(..., strict=False)`` leaves out a sentence that does not hold instead of failing.
"""

from __future__ import annotations

from IPython import get_ipython
from IPython.display import Markdown, display


class ClaimFailed(AssertionError):
    """A sentence of a notebook's prose is false for the output it stands beside."""


def say(text: str) -> None:
    """Show ``text`` (Markdown, usually an f-string of computed values) as prose.

    In a notebook it renders as Markdown; in a plain Python process (a script, a test) it is printed.
    """
    if get_ipython() is None:
        print(text)
    else:
        display(Markdown(text))


def claim(holds: bool, text: str, *, strict: bool = True) -> None:
    """Show ``text`` as prose if ``holds`` is true; if not, raise ``ClaimFailed`` (or, not ``strict``, show nothing)."""
    if not bool(holds):
        if not strict:
            return
        raise ClaimFailed(
            f"this notebook's text is no longer true of its output: {text!r}. Rewrite the sentence "
            "(or find why the result changed) before using the notebook."
        )
    say(text)
