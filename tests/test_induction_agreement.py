"""The lab's answers agree with TransformerLens's own tools, and with the model itself, on the shipped model.

Independent checks: the solution's induction scores pick the same heads as
``transformer_lens.head_detector.detect_head``; its Q-, K- and V-composition scores equal
``TransformerBridge.all_composition_scores``; its eigenvalue copying scores equal those of the full
``d_vocab × d_vocab`` OV matrix from ``torch.linalg.eigvals`` in float64. And the decompositions add
up to what the model computes: the logit attribution to the logits, the split attention scores to the
pattern, the positional pattern to layer 0's pattern with the token embeddings zeroed, the ablations to
the same ablations written another way.
"""

import functools
from typing import Callable

import einops
import pytest
import torch
from course import solution_functions
from transformer_lens.head_detector import detect_head

from interplab.models import load

SEQ_LEN = 15


def patterns_of(model, tokens):
    _, cache = model.run_with_cache(tokens)
    return torch.stack([cache["pattern", layer] for layer in range(model.cfg.n_layers)])


@pytest.fixture(autouse=True)
def no_grad():
    """The lab runs with gradients off (it only reads the model); so do its functions here."""
    with torch.no_grad():
        yield


@pytest.fixture(scope="module")
def setup():
    model = load("attn-only-2l", device="cpu")
    fns = solution_functions(functools=functools, Callable=Callable)
    tokens = fns["repeated_tokens"](model.tokenizer.bos_token_id, model.tokenizer.all_special_ids, model.cfg.d_vocab,
                                    SEQ_LEN, 4, torch.Generator().manual_seed(1))
    return model, fns, tokens


def test_induction_heads_match_transformer_lens_head_detector(setup):
    model, fns, tokens = setup
    ours = fns["induction_scores"](patterns_of(model, tokens[:1]), SEQ_LEN)
    theirs = detect_head(model, model.to_string(tokens[0, 1:]), "induction_head")
    strong = lambda scores: {tuple(i) for i in (scores > 0.3).nonzero().tolist()}
    assert strong(ours) and strong(ours) == strong(theirs)
    assert torch.corrcoef(torch.stack([ours.flatten(), theirs.flatten()]))[0, 1] > 0.95


def test_previous_token_heads_match_transformer_lens_head_detector(setup):
    model, fns, tokens = setup
    ours = fns["prev_token_scores"](patterns_of(model, tokens[:1]))
    theirs = detect_head(model, model.to_string(tokens[0, 1:]), "previous_token_head")
    assert int(ours.argmax()) == int(theirs.argmax())


@pytest.mark.parametrize("mode", ["Q", "K", "V"])
def test_composition_scores_match_all_composition_scores(setup, mode):
    model, fns, _ = setup
    theirs = model.all_composition_scores(mode).scores[0, :, 1, :]
    torch.testing.assert_close(fns["head_composition_scores"](model, mode), theirs.float(), rtol=1e-4, atol=1e-6)


def test_the_induction_heads_compose_with_the_previous_token_head_above_chance(setup):
    model, fns, tokens = setup
    patterns = patterns_of(model, tokens)
    prev_head = int(fns["prev_token_scores"](patterns)[0].argmax())
    induction_head = int(fns["induction_scores"](patterns, SEQ_LEN)[1].argmax())
    baseline = fns["composition_baseline"](model.cfg.d_model, model.cfg.d_head, 200, torch.Generator().manual_seed(0))
    assert fns["head_composition_scores"](model, "K")[prev_head, induction_head] > 2 * baseline


def test_eigenvalue_copying_scores_match_the_full_matrix_in_float64(setup):
    model, fns, _ = setup
    for layer in range(model.cfg.n_layers):
        plain = torch.zeros(model.cfg.n_heads, dtype=torch.float64)
        for head in range(model.cfg.n_heads):
            full = model.W_E.double() @ model.W_V[layer, head].double() @ model.W_O[layer, head].double() @ model.W_U.double()
            eigenvalues = torch.linalg.eigvals(full)  # d_vocab of them, all but d_head (numerically) zero
            plain[head] = eigenvalues.sum().real / eigenvalues.abs().sum()
        torch.testing.assert_close(fns["eigenvalue_copying_scores"](model, layer).double(), plain, rtol=1e-3, atol=1e-4)


def test_logit_attribution_adds_up_to_the_logits(setup):
    model, fns, tokens = setup
    logits, cache = model.run_with_cache(tokens[:1])
    heads = [einops.einsum(cache["z", layer][0], model.W_O[layer], "s h d, h d m -> s h m") for layer in (0, 1)]
    attribution = fns["logit_attribution"](cache["embed"][0], cache["pos_embed"][0], heads[0], heads[1], model.b_O,
                                           cache["ln_final.hook_scale"][0, :, 0], model.W_U, model.b_U, tokens[0])
    correct = logits[0, :-1].gather(-1, tokens[0, 1:, None])[:, 0]
    torch.testing.assert_close(attribution.sum(-1), correct, rtol=1e-4, atol=1e-4)


def test_split_attention_scores_add_up_to_every_induction_heads_pattern(setup):
    model, fns, tokens = setup
    _, cache = model.run_with_cache(tokens[:1])
    heads = einops.einsum(cache["z", 0][0], model.W_O[0], "s h d, h d m -> h s m")
    components = torch.cat([cache["embed"][0][None], cache["pos_embed"][0][None], heads, model.b_O[0].expand(1, *heads.shape[1:])])
    causal = torch.ones(tokens.shape[1], tokens.shape[1], dtype=torch.bool).tril()
    for head in range(model.cfg.n_heads):
        parts = fns["decompose_attn_scores"](components, cache["blocks.1.ln1.hook_scale"][0, :, 0], model.W_Q[1, head],
                                             model.b_Q[1, head], model.W_K[1, head], model.b_K[1, head])
        pattern = parts.sum((0, 1)).masked_fill(~causal, float("-inf")).softmax(-1)
        torch.testing.assert_close(pattern, cache["pattern", 1][0, head], rtol=1e-4, atol=1e-5)


def test_the_positional_pattern_is_layer_0s_pattern_without_token_embeddings(setup):
    model, fns, tokens = setup
    zero_tokens = [("hook_embed", lambda embed, hook: torch.zeros_like(embed))]
    stored = {}
    store = lambda pattern, hook: stored.setdefault("pattern", pattern.clone())
    model.run_with_hooks(tokens[:1], fwd_hooks=zero_tokens + [("blocks.0.attn.hook_pattern", store)])
    n = tokens.shape[1]
    for head in range(model.cfg.n_heads):
        ours = fns["positional_pattern"](model.W_pos, model.W_Q[0, head], model.b_Q[0, head], model.W_K[0, head],
                                         model.b_K[0, head], model.cfg.eps)
        torch.testing.assert_close(ours[:n, :n], stored["pattern"][0, head], rtol=1e-4, atol=1e-5)


def test_mean_ablation_equals_patching_in_the_clean_mean(setup):
    """Ablating layer-1 heads by their mean, in the solution's way, equals patching in a mean computed beforehand
    from a clean run (layer 1's own z does not depend on whether layer 1 is ablated)."""
    model, fns, tokens = setup
    heads = [(1, 0), (1, 3), (1, 6)]
    _, cache = model.run_with_cache(tokens, names_filter="blocks.1.attn.hook_z")
    mean = cache["blocks.1.attn.hook_z"].mean(0)

    def patch(z, hook):
        for _, head in heads:
            z[:, :, head] = mean[:, head]
        return z

    clean = model(tokens, return_type="loss").item()
    patched = model.run_with_hooks(tokens, return_type="loss", fwd_hooks=[("blocks.1.attn.hook_z", patch)]).item()
    assert fns["joint_ablation_loss_increase"](model, tokens, heads, "mean") == pytest.approx(patched - clean, abs=1e-5)


def test_a_joint_ablation_of_one_head_is_its_single_ablation(setup):
    model, fns, tokens = setup
    single = fns["ablation_loss_increase"](model, tokens)
    for layer, head in [(0, 0), (1, 2)]:
        assert fns["joint_ablation_loss_increase"](model, tokens, [(layer, head)], "zero") == pytest.approx(
            single[layer, head].item(), abs=1e-5)


def test_induction_scores_with_ablation_match_patterns_stored_by_a_hook(setup):
    """The same ablation, with the layer-1 patterns read by a hook in one run_with_hooks call instead."""
    model, fns, tokens = setup
    patterns = patterns_of(model, tokens)
    prev_head = int(fns["prev_token_scores"](patterns)[0].argmax())
    stored = {}
    hooks = fns["ablation_hooks"]([(0, prev_head)], "zero") + [
        (f"blocks.{layer}.attn.hook_pattern", lambda pattern, hook, layer=layer: stored.__setitem__(layer, pattern.clone()))
        for layer in range(model.cfg.n_layers)]
    model.run_with_hooks(tokens, fwd_hooks=hooks)
    expected = fns["induction_scores"](torch.stack([stored[layer] for layer in range(model.cfg.n_layers)]), SEQ_LEN)
    ours = fns["induction_scores_with_ablation"](model, tokens, SEQ_LEN, [(0, prev_head)], "zero")
    torch.testing.assert_close(ours, expected)
    assert (ours[1] < 0.5 * fns["induction_scores"](patterns, SEQ_LEN)[1]).all()


def test_the_detectors_score_every_head_as_the_instructions_say(setup):
    """[layer, head] scores: the mean over the batch and the queries q >= 1 of pattern[q, q], [q, q-1], [q, 0],
    computed here by a plain loop (a student who follows the instructions must match the reference)."""
    model, fns, tokens = setup
    patterns = patterns_of(model, tokens[:2])  # [layer, batch, head, query, key]
    n_layers, batch, n_heads, n_pos, _ = patterns.shape
    for name, key_of in [("current_token_scores", lambda q: q), ("prev_token_scores", lambda q: q - 1),
                         ("first_token_scores", lambda q: 0)]:
        plain = torch.zeros(n_layers, n_heads)
        for layer in range(n_layers):
            for head in range(n_heads):
                plain[layer, head] = sum(patterns[layer, b, head, q, key_of(q)] for b in range(batch)
                                         for q in range(1, n_pos)) / (batch * (n_pos - 1))
        torch.testing.assert_close(fns[name](patterns), plain, rtol=1e-5, atol=1e-6, msg=name)
