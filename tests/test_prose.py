"""Prose written from values, and claims that fail loudly when the output no longer bears them out."""

import pytest

from interplab.prose import ClaimFailed, claim, say


def test_say_and_a_true_claim_show_their_text(capsys):
    say("score **0.91**")
    claim(0.91 > 0.5, "above chance")
    shown = capsys.readouterr().out
    assert "score **0.91**" in shown and "above chance" in shown


def test_a_false_claim_raises_and_quotes_the_sentence():
    with pytest.raises(ClaimFailed, match="most heads are induction heads"):
        claim(False, "most heads are induction heads")


def test_a_claim_that_is_not_strict_leaves_out_a_false_sentence(capsys):
    claim(False, "true on the GPU tier too", strict=False)
    claim(True, "shown where it holds", strict=False)
    shown = capsys.readouterr().out
    assert "true on the GPU tier too" not in shown and "shown where it holds" in shown
