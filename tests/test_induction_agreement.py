"""The lab's answers agree with TransformerLens's own tools on the shipped model.

Independent checks: the solution's induction scores pick the same heads as
``transformer_lens.head_detector.detect_head``, and its K-composition scores equal
``TransformerBridge.all_composition_scores("K")``.
"""

import pytest
import torch
from course import solution_functions
from transformer_lens.head_detector import detect_head

from interplab.models import load

SEQ_LEN = 15


def patterns_of(model, tokens):
    _, cache = model.run_with_cache(tokens)
    return torch.stack([cache["pattern", layer] for layer in range(model.cfg.n_layers)])


@pytest.fixture(scope="module")
def setup():
    model = load("attn-only-2l", device="cpu")
    fns = solution_functions()
    tokens = fns["repeated_tokens"](model.tokenizer.bos_token_id, model.cfg.d_vocab, SEQ_LEN, 1, torch.Generator().manual_seed(1))
    return model, fns, tokens


def test_induction_heads_match_transformer_lens_head_detector(setup):
    model, fns, tokens = setup
    ours = fns["induction_scores"](patterns_of(model, tokens), SEQ_LEN)
    theirs = detect_head(model, model.to_string(tokens[0, 1:]), "induction_head")
    strong = lambda scores: {tuple(i) for i in (scores > 0.3).nonzero().tolist()}
    assert strong(ours) and strong(ours) == strong(theirs)
    assert torch.corrcoef(torch.stack([ours.flatten(), theirs.flatten()]))[0, 1] > 0.95


def test_previous_token_heads_match_transformer_lens_head_detector(setup):
    model, fns, tokens = setup
    ours = fns["prev_token_scores"](patterns_of(model, tokens))
    theirs = detect_head(model, model.to_string(tokens[0, 1:]), "previous_token_head")
    assert int(ours.argmax()) == int(theirs.argmax())


def test_k_composition_matches_all_composition_scores(setup):
    model, fns, _ = setup
    theirs = model.all_composition_scores("K").scores[0, :, 1, :]
    torch.testing.assert_close(fns["k_composition_scores"](model), theirs.float(), rtol=1e-4, atol=1e-6)


def test_the_induction_heads_compose_with_the_previous_token_head_above_chance(setup):
    model, fns, tokens = setup
    patterns = patterns_of(model, tokens)
    prev_head = int(fns["prev_token_scores"](patterns)[0].argmax())
    induction_head = int(fns["induction_scores"](patterns, SEQ_LEN)[1].argmax())
    baseline = fns["composition_baseline"](model.cfg.d_model, model.cfg.d_head, 200, torch.Generator().manual_seed(0))
    assert fns["k_composition_scores"](model)[prev_head, induction_head] > 2 * baseline


def test_the_detectors_score_every_head_as_the_instructions_say(setup):
    """[layer, head] scores: the mean over the batch and the queries q >= 1 of pattern[q, q], [q, q-1], [q, 0],
    computed here by a plain loop (a student who follows the instructions must match the reference)."""
    model, fns, tokens = setup
    patterns = patterns_of(model, tokens.repeat(2, 1))  # [layer, batch, head, query, key]
    n_layers, batch, n_heads, n_pos, _ = patterns.shape
    for name, key_of in [("current_token_scores", lambda q: q), ("prev_token_scores", lambda q: q - 1),
                         ("first_token_scores", lambda q: 0)]:
        plain = torch.zeros(n_layers, n_heads)
        for layer in range(n_layers):
            for head in range(n_heads):
                plain[layer, head] = sum(patterns[layer, b, head, q, key_of(q)] for b in range(batch)
                                         for q in range(1, n_pos)) / (batch * (n_pos - 1))
        torch.testing.assert_close(fns[name](patterns), plain, rtol=1e-5, atol=1e-6, msg=name)
