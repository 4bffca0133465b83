"""Lab 06, activation patching: grading a class end to end, and the lab's answers checked independently.

One class is graded once (``classes.GradedClass``): the completed lab, the untouched lab and every known
mistake in ``autograder/mutants/06_patching.json``. Then the solution's functions are checked against

- a second implementation written here: a plain loop of single forward passes, one prompt at a time
  (the lab patches whole batches), averaged afterwards;
- TransformerLens's own patching functions, where they work with the course's ``boot_native`` models:
  ``get_act_patch_resid_pre``, ``get_act_patch_attn_head_out_all_pos``, ``get_act_patch_attn_head_{q,k,v,
  pattern}_all_pos`` and ``get_act_patch_attn_head_out_by_pos`` all do; ``get_act_patch_direct_path`` does not
  (it needs ``use_split_qkv_input``), so path patching is compared with it on a GPT-2-architecture model
  built here and loaded with ``boot_transformers``, where it works;
- real patching: attribution patching must agree with it on the shipped model above a stated correlation;
- for paths of several hops: with one hop into the last layer, exercise 5.1's path patching; with none, the
  sender's direct effect computed by hand through ln_final, on the shipped model and on the GPT-2-like one.
"""

from __future__ import annotations

from functools import partial

import pytest
import torch
import transformer_lens.patching as tl_patching
from classes import GradedClass
from course import solution_functions
from transformers import GPT2Config, GPT2LMHeadModel

from interplab import ioi
from interplab.exercises import get_lab
from interplab.models import load

LAB = "06_patching"
SPEC = get_lab(LAB)
NAMES = {"partial": partial}
SOLUTION = solution_functions(LAB, **NAMES)
#: Attribution patching must agree with real patching of every head at every position at least this well
#: on the shipped model (measured: 0.997 on the lesson's prompts).
ATTRIBUTION_MIN_CORRELATION = 0.98


class TestGrading(GradedClass):
    LAB = LAB
    #: The untouched lab, the solution and one mistake go through nbgrader and the sandbox; the rest are judged
    #: in process (each kernel run costs about a minute on a loaded 2-core machine).
    END_TO_END = ("pattern_head_axis",)
    NAMES = NAMES


# --- the second implementation: one prompt at a time ----------------------------------------------------


@pytest.fixture(scope="module")
def model():
    return load("ioi-3l", device="cpu")


@pytest.fixture(scope="module")
def prompts():
    """Few prompts (the plain loop runs each alone), of the shortest template, which the lab's examples do not use."""
    return ioi.prompts(3, 3, torch.Generator().manual_seed(11))


@torch.no_grad()
def one_prompt_ld(model, tokens, io, s, hooks=()) -> float:
    """logit(IO) - logit(S) at the last position of a single prompt, with `hooks`."""
    logits = model.run_with_hooks(tokens[None], fwd_hooks=list(hooks))[0, -1]
    return float(logits[io] - logits[s])


@torch.no_grad()
def plain_patching(model, p: ioi.Prompts, names: list[str], sites: list[tuple], source: str = "clean") -> torch.Tensor:
    """For each hook name and each site of its activation: the normalised LD, patching prompt by prompt.

    A site is the tuple that indexes one patch in a single prompt's activation (batch axis first).
    `source="clean"` denoises (clean values into the corrupted prompt); `"corrupted"` noises.
    """
    clean = [one_prompt_ld(model, p.clean[i], p.io[i], p.s[i]) for i in range(len(p))]
    corrupted = [one_prompt_ld(model, p.corrupted[i], p.io[i], p.s[i]) for i in range(len(p))]
    clean_mean, corrupted_mean = sum(clean) / len(p), sum(corrupted) / len(p)
    values_from, run_on = (p.clean, p.corrupted) if source == "clean" else (p.corrupted, p.clean)
    caches = [model.run_with_cache(values_from[i][None], names_filter=lambda n: n in names)[1] for i in range(len(p))]
    results = []
    for name in names:
        row = []
        for site in sites:
            lds = []
            for i in range(len(p)):
                def patch(activation, hook, name=name, site=site, cache=caches[i]):
                    activation[site] = cache[name][site]
                    return activation

                lds.append(one_prompt_ld(model, run_on[i], p.io[i], p.s[i], [(name, patch)]))
            row.append((sum(lds) / len(lds) - corrupted_mean) / (clean_mean - corrupted_mean))
        results.append(row)
    return torch.tensor(results)


@pytest.mark.parametrize("denoise", [True, False], ids=["denoising", "noising"])
def test_residual_patching_agrees_with_a_loop_over_single_prompts(model, prompts, denoise):
    ours = SOLUTION["residual_patching"](model, prompts.clean, prompts.corrupted, prompts.io, prompts.s, denoise)
    names = [f"blocks.{layer}.hook_resid_pre" for layer in range(model.cfg.n_layers)]
    sites = [(slice(None), pos) for pos in range(prompts.clean.shape[1])]
    plain = plain_patching(model, prompts, names, sites, "clean" if denoise else "corrupted")
    torch.testing.assert_close(ours, plain.float(), rtol=1e-3, atol=2e-4)


def test_head_patching_agrees_with_a_loop_over_single_prompts(model, prompts):
    ours = SOLUTION["head_patching"](model, prompts.clean, prompts.corrupted, prompts.io, prompts.s)
    names = [f"blocks.{layer}.attn.hook_z" for layer in range(model.cfg.n_layers)]
    plain = plain_patching(model, prompts, names, [(slice(None), slice(None), h) for h in range(model.cfg.n_heads)])
    torch.testing.assert_close(ours, plain.float(), rtol=1e-3, atol=2e-4)


def test_pattern_patching_agrees_with_a_loop_over_single_prompts(model, prompts):
    ours = SOLUTION["head_component_patching"](model, prompts.clean, prompts.corrupted, prompts.io, prompts.s, "pattern")
    names = [f"blocks.{layer}.attn.hook_pattern" for layer in range(model.cfg.n_layers)]
    plain = plain_patching(model, prompts, names, [(slice(None), h) for h in range(model.cfg.n_heads)])
    torch.testing.assert_close(ours, plain.float(), rtol=1e-3, atol=2e-4)


def test_end_attention_agrees_with_a_loop(model):
    p = ioi.prompts(6, 2, torch.Generator().manual_seed(3))
    _, cache = model.run_with_cache(p.clean)
    patterns = torch.stack([cache["pattern", layer] for layer in range(model.cfg.n_layers)])
    ours = SOLUTION["end_attention"](patterns, p.io_pos, p.s1_pos, p.s2_pos)
    plain = torch.zeros_like(ours)
    for i in range(len(p)):
        for k, pos in enumerate((int(p.io_pos[i]), int(p.s1_pos[i]), p.s2_pos)):
            plain[:, :, k] += patterns[:, i, :, -1, pos] / len(p)
    torch.testing.assert_close(ours, plain)


def test_faithfulness_agrees_with_per_head_mean_ablation(model):
    p = ioi.prompts(8, 3, torch.Generator().manual_seed(4))
    reference = ioi.reference(20, 3, torch.Generator().manual_seed(5))
    circuit = torch.zeros(model.cfg.n_layers, model.cfg.n_heads, dtype=torch.bool)
    circuit[2, 1] = circuit[2, 2] = circuit[0, 1] = True
    _, ref_cache = model.run_with_cache(reference)
    hooks = []
    for layer in range(model.cfg.n_layers):
        for head in range(model.cfg.n_heads):
            if not circuit[layer, head]:
                mean = ref_cache["z", layer][:, :, head].mean(0)  # [pos, d_head]

                def ablate(z, hook, head=head, mean=mean):
                    z[:, :, head] = mean
                    return z

                hooks.append((f"blocks.{layer}.attn.hook_z", ablate))
    kept = sum(one_prompt_ld(model, p.clean[i], p.io[i], p.s[i], hooks) for i in range(len(p)))
    full = sum(one_prompt_ld(model, p.clean[i], p.io[i], p.s[i]) for i in range(len(p)))
    assert SOLUTION["faithfulness"](model, p.clean, p.io, p.s, reference, circuit) == pytest.approx(kept / full, rel=1e-4)


# --- TransformerLens's patching functions ----------------------------------------------------------------


@pytest.fixture(scope="module")
def tl_setup(model):
    p = ioi.prompts(8, 0, torch.Generator().manual_seed(21))
    clean_logits, clean_cache = model.run_with_cache(p.clean)
    ld = SOLUTION["logit_diff"]
    clean, corrupted = ld(clean_logits, p.io, p.s), ld(model(p.corrupted), p.io, p.s)
    metric = lambda logits: (ld(logits, p.io, p.s) - corrupted) / (clean - corrupted)  # noqa: E731
    return p, clean_cache, metric


def test_residual_patching_equals_get_act_patch_resid_pre(model, tl_setup):
    p, clean_cache, metric = tl_setup
    ours = SOLUTION["residual_patching"](model, p.clean, p.corrupted, p.io, p.s)
    torch.testing.assert_close(ours, tl_patching.get_act_patch_resid_pre(model, p.corrupted, clean_cache, metric),
                               rtol=1e-4, atol=1e-5)


def test_head_patching_equals_get_act_patch_attn_head_out_all_pos(model, tl_setup):
    p, clean_cache, metric = tl_setup
    ours = SOLUTION["head_patching"](model, p.clean, p.corrupted, p.io, p.s)
    theirs = tl_patching.get_act_patch_attn_head_out_all_pos(model, p.corrupted, clean_cache, metric)
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("component", ["q", "k", "v", "pattern"])
def test_component_patching_equals_transformer_lens(model, tl_setup, component):
    p, clean_cache, metric = tl_setup
    ours = SOLUTION["head_component_patching"](model, p.clean, p.corrupted, p.io, p.s, component)
    theirs = getattr(tl_patching, f"get_act_patch_attn_head_{component}_all_pos")(model, p.corrupted, clean_cache, metric)
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5)


def test_attribution_patching_agrees_with_real_patching_of_every_head_at_every_position(model, tl_setup):
    p, clean_cache, metric = tl_setup
    estimate = SOLUTION["attribution_patching"](model, p.clean, p.corrupted, p.io, p.s)
    actual = tl_patching.get_act_patch_attn_head_out_by_pos(model, p.corrupted, clean_cache, metric)
    assert estimate.shape == actual.shape
    r = torch.corrcoef(torch.stack([estimate.flatten(), actual.flatten()]))[0, 1]
    assert r > ATTRIBUTION_MIN_CORRELATION
    assert estimate.flatten().argmax() == actual.flatten().argmax()  # the same strongest head and position


def test_direct_path_patching_is_unavailable_on_boot_native_models(model, tl_setup):
    p, clean_cache, metric = tl_setup
    _, corrupted_cache = model.run_with_cache(p.corrupted)
    with pytest.raises(NotImplementedError, match="use_split_qkv_input"):
        tl_patching.get_act_patch_direct_path(model, p.corrupted, clean_cache, corrupted_cache, metric, 1, 0, verbose=False)


@pytest.fixture(scope="module")
def gpt2_like(tmp_path_factory):
    """A 3-layer GPT-2 (MLPs included) with random weights and the IOI tokenizer, loaded by boot_transformers."""
    folder = tmp_path_factory.mktemp("gpt2-like")
    torch.manual_seed(0)
    hf = GPT2LMHeadModel(GPT2Config(vocab_size=ioi.D_VOCAB, n_positions=32, n_layer=3, n_head=4, n_embd=32,
                                    initializer_range=0.2))  # large weights: the prompts' logits differ clearly
    hf.save_pretrained(folder)
    ioi.make_tokenizer().save_pretrained(folder)
    return load(folder, device="cpu")


@pytest.mark.parametrize("sender, receiver, component", [((0, 1), (2, 3), "q"), ((0, 2), (1, 0), "v"), ((1, 3), (2, 0), "k")])
def test_path_patching_equals_get_act_patch_direct_path_on_a_gpt2_architecture(gpt2_like, sender, receiver, component):
    """TransformerLens adds the sender's clean-minus-corrupted write to one receiver's own copy of the residual
    stream; run with the roles of the two prompts swapped, that is the lab's noising path patch, MLPs frozen."""
    model = gpt2_like
    p = ioi.prompts(6, 0, torch.Generator().manual_seed(8))
    ld = SOLUTION["logit_diff"]
    clean_logits, clean_cache = model.run_with_cache(p.clean)
    corrupted_logits, corrupted_cache = model.run_with_cache(p.corrupted)
    clean, corrupted = ld(clean_logits, p.io, p.s), ld(corrupted_logits, p.io, p.s)
    assert abs(float(clean - corrupted)) > 0.1, "the test model's prompts must differ in logit difference"
    metric = lambda logits: (ld(logits, p.io, p.s) - corrupted) / (clean - corrupted)  # noqa: E731
    theirs = tl_patching.get_act_patch_direct_path(model, p.clean, corrupted_cache, clean_cache, metric, *sender,
                                                   component=component, verbose=False)
    ours = SOLUTION["path_patching"](model, p.clean, p.corrupted, p.io, p.s, sender, receiver, component)
    assert ours == pytest.approx(float(theirs[receiver]), abs=1e-4)
    assert abs(ours - 1) > 1e-3, "the path must carry something for the comparison to mean anything"


@pytest.mark.parametrize("sender, receiver, component", [((0, 1), (2, 2), "v"), ((1, 0), (2, 3), "q")])
def test_a_path_of_one_hop_into_the_last_layer_is_path_patching(model, sender, receiver, component):
    """In an attention-only model nothing follows the last layer's heads but ln_final, so ending a path directly at
    the logits changes nothing there: the multi-hop function with one hop is exercise 5.1's path patch."""
    p = ioi.prompts(8, 1, torch.Generator().manual_seed(12))
    args = (model, p.clean, p.corrupted, p.io, p.s)
    ours = SOLUTION["path_chain_patching"](*args, sender, ((receiver, component),))
    assert ours == pytest.approx(SOLUTION["path_patching"](*args, sender, receiver, component), abs=1e-6)
    assert abs(ours - 1) > 1e-3, "the path must carry something for the comparison to mean anything"


@pytest.mark.parametrize("which", ["ioi-3l", "gpt2-like"])
@pytest.mark.parametrize("sender", [(1, 0), (0, 2)])
@torch.no_grad()
def test_a_head_with_no_hops_reaches_the_logits_only_directly(model, gpt2_like, which, sender):
    """With no hops the path is the sender's direct effect: its change of output, (corrupted - clean z) W_O, added to
    the clean final stream and read through ln_final and the unembedding, MLPs included where the model has them."""
    model = model if which == "ioi-3l" else gpt2_like
    p = ioi.prompts(6, 0, torch.Generator().manual_seed(13))
    ld = SOLUTION["logit_diff"]
    clean_logits, clean_cache = model.run_with_cache(p.clean)
    corrupted_logits, corrupted_cache = model.run_with_cache(p.corrupted)
    layer, head = sender
    change = (corrupted_cache["z", layer] - clean_cache["z", layer])[:, :, head] @ model.W_O[layer, head]
    final = clean_cache[f"blocks.{model.cfg.n_layers - 1}.hook_resid_post"] + change
    direct = ld(model.unembed(model.ln_final(final)), p.io, p.s)
    clean, corrupted = ld(clean_logits, p.io, p.s), ld(corrupted_logits, p.io, p.s)
    expected = float((direct - corrupted) / (clean - corrupted))
    ours = SOLUTION["path_chain_patching"](model, p.clean, p.corrupted, p.io, p.s, sender, ())
    assert ours == pytest.approx(expected, abs=1e-5)
    assert abs(ours - 1) > 1e-4, "the head must have a direct effect for the comparison to mean anything"


# --- the grader's inputs ----------------------------------------------------------------------------------


def test_perturbed_models_still_do_the_task_but_patch_differently(model):
    from interplab.exercises import Inputs
    from interplab.exercises import patching as spec

    p = ioi.prompts(16, 0, torch.Generator().manual_seed(2))
    ld = SOLUTION["logit_diff"]
    for seed in range(5):  # the normalised metric stays well conditioned: clean and corrupted far apart
        other = spec._perturbed(Inputs(seed, "head_patching"), "perturbed")
        assert float(ld(other(p.clean), p.io, p.s) - ld(other(p.corrupted), p.io, p.s)) > 2.0, seed
    twin = spec._perturbed(Inputs(7, "head_patching"), "perturbed")
    ours, theirs = (SOLUTION["head_patching"](m, p.clean, p.corrupted, p.io, p.s) for m in (model, twin))
    ex = SPEC.exercise("head_patching")
    assert (ours - theirs).abs().max() > 10 * (ex.atol + ex.rtol * float(ours.abs().max()))


@pytest.mark.parametrize("seed", [1, "an instructor's secret"])
def test_no_public_path_of_several_hops_answers_a_hidden_case_of_another_seed(seed):
    """Every path ends near 1, so values of different paths can lie close: for seeds other than the default hidden
    one (which test_hidden_cases.py covers), no public answer is judged right on any hidden case."""
    from interplab.answers import Case
    from interplab.checker import run_cases
    from interplab.exercises import PUBLIC_SEED
    from interplab.judge import judge

    ex = SPEC.exercise("path_chain_patching")
    public = run_cases(ex, SOLUTION[ex.name], ex.build_cases(PUBLIC_SEED))
    cases = ex.build_cases(seed)
    hidden = run_cases(ex, SOLUTION[ex.name], cases)
    for j, copied in enumerate(public):
        verdict = judge(ex, [Case(copied.value)] * len(hidden), hidden, [], lambda: cases)
        assert verdict.score == 0.0, f"public case {j} answers a hidden case: {verdict.message}"


# --- correct answers written another way pass the checks ------------------------------------------------------


def check_publicly(exercise: str, fn) -> str:
    """What ``lab.check`` says of ``fn``: the verdict's message on the public inputs."""
    from interplab.checker import Lab

    with torch.no_grad():
        return Lab(LAB).verdict(exercise, fn).message


def _normalised_metric(model, clean_tokens, corrupted_tokens, io, s):
    ld = lambda logits: (logits[torch.arange(len(io)), -1, io] - logits[torch.arange(len(io)), -1, s]).mean()  # noqa: E731
    clean, corrupted = ld(model(clean_tokens)), ld(model(corrupted_tokens))
    return lambda logits: (ld(logits) - corrupted) / (clean - corrupted)


def residual_with_transformer_lens(model, clean_tokens, corrupted_tokens, io, s, denoise=True):
    metric = _normalised_metric(model, clean_tokens, corrupted_tokens, io, s)
    source, run_on = (clean_tokens, corrupted_tokens) if denoise else (corrupted_tokens, clean_tokens)
    _, cache = model.run_with_cache(source)
    return tl_patching.get_act_patch_resid_pre(model, run_on, cache, metric)


def heads_with_transformer_lens(model, clean_tokens, corrupted_tokens, io, s):
    _, cache = model.run_with_cache(clean_tokens)
    metric = _normalised_metric(model, clean_tokens, corrupted_tokens, io, s)
    return tl_patching.get_act_patch_attn_head_out_all_pos(model, corrupted_tokens, cache, metric)


def components_with_transformer_lens(model, clean_tokens, corrupted_tokens, io, s, component):
    _, cache = model.run_with_cache(clean_tokens)
    metric = _normalised_metric(model, clean_tokens, corrupted_tokens, io, s)
    return getattr(tl_patching, f"get_act_patch_attn_head_{component}_all_pos")(model, corrupted_tokens, cache, metric)


def attribution_with_autograd_grad(model, clean_tokens, corrupted_tokens, io, s):
    """torch.autograd.grad on the saved activations, a mean over the batch undone by hand, float64 products."""
    names = [f"blocks.{layer}.attn.hook_z" for layer in range(model.cfg.n_layers)]
    _, clean_cache = model.run_with_cache(clean_tokens)
    saved = {}
    with torch.enable_grad():
        logits = model.run_with_hooks(corrupted_tokens, fwd_hooks=[(n, lambda a, hook, n=n: saved.setdefault(n, a)) for n in names])
        rows = torch.arange(len(io))
        per_prompt = logits[rows, -1, io] - logits[rows, -1, s]
        grads = torch.autograd.grad(per_prompt.sum(), [saved[n] for n in names])  # no 1 / batch here
    clean_ld = (lambda l: (l[rows, -1, io] - l[rows, -1, s]).mean())(model(clean_tokens))
    out = torch.stack([((clean_cache[n] - saved[n].detach()).double() * g.double()).sum(-1).mean(0) for n, g in zip(names, grads)])
    return (out / (clean_ld - per_prompt.mean().detach()).double()).float()


@pytest.mark.parametrize("exercise, fn", [
    ("residual_patching", residual_with_transformer_lens),
    ("head_patching", heads_with_transformer_lens),
    ("head_component_patching", components_with_transformer_lens),
    ("attribution_patching", attribution_with_autograd_grad),
], ids=["residual", "heads", "components", "attribution"])
def test_a_correct_answer_written_differently_passes(exercise, fn):
    assert check_publicly(exercise, fn).startswith("correct on all")
