"""Lab 01, features: grading a class end to end, and the lab's answers checked independently.

One class is graded once (``classes.GradedClass``): the completed lab, the untouched lab and every known
mistake in ``autograder/mutants/01_features.json``. Then:

- AUROC agrees with scikit-learn's ``roc_auc_score`` (ties, batches, real directions);
- the residual stack and the logit lens agree with TransformerLens's own ``accumulated_resid`` (with
  ``apply_ln=True``) and its ``logit_lens`` tool, and the lens's last layer is the model's own output;
- the direct logit effect is the derivative of the logits along a direction that leaves the final
  LayerNorm's scale unchanged, measured with a hook;
- each head's and MLP's direct logit attribution agrees with TransformerLens's ``stack_head_results`` and
  ``apply_ln_to_stack``, and, for the last MLP, with zeroing it while the final scale is held;
- the GPU tier's code path (GPT-2's architecture through ``boot_transformers``, a byte-level BPE tokenizer
  and ``features.in_model_tokens``) runs on a tiny GPT-2 built here, and the lesson and the lab run top to
  bottom on the GPU tier with that tiny GPT-2 standing in for GPT-2 small in an offline Hugging Face cache.
  GPT-2 small itself needs the Hub, and its numbers are not checked here.
"""

import pytest
import torch
from classes import GradedClass
from course import ROOT, solution_functions, solution_of
from sklearn.metrics import roc_auc_score
from test_models import tiny_gpt2_folder
from transformer_lens.tools.analysis.logit_lens import logit_lens as tl_logit_lens

from interplab import corpus, features, models
from interplab.checker import Lab, run_cases
from interplab.answers import Case
from interplab.exercises import PUBLIC_SEED, get_lab
from interplab.grading.execute import run_notebook
from interplab.judge import judge

LAB = "01_features"
SOLUTION = solution_functions(LAB)


class TestGrading(GradedClass):
    LAB = LAB
    PROPERTY_MESSAGES = {"unit_norm": "must have the norm of `direction`",
                         "not_normalised": "must have the norm of `direction`",
                         "one_direction": "point the same way"}
    #: A kernel each costs half a minute; one mistake goes the whole way, on the exercise judged by its
    #: properties; the rest are judged in process.
    END_TO_END = ("one_direction",)


@pytest.fixture(scope="module")
def tiny_lm():
    return models.load("tiny-lm", "cpu")


@pytest.fixture(scope="module")
def tiny_gpt2(tmp_path_factory):
    """A two-layer GPT-2 saved like a Hub model and loaded as the GPU tier loads GPT-2 small."""
    folder = tmp_path_factory.mktemp("gpt2")
    tiny_gpt2_folder(folder)
    return models.load(folder, "cpu")


# --- AUROC against scikit-learn ---------------------------------------------------------------------


def test_auroc_agrees_with_scikit_learn_with_ties_and_in_batches():
    generator = torch.Generator().manual_seed(0)
    labels = torch.rand(400, generator=generator) < 0.3
    continuous = torch.randn(400, generator=generator) + labels.float()
    tied = torch.randint(0, 4, (5, 400), generator=generator).float() + labels.float()  # ties everywhere
    assert SOLUTION["auroc"](continuous, labels).item() == pytest.approx(roc_auc_score(labels, continuous), abs=1e-6)
    ours = SOLUTION["auroc"](tied, labels)
    assert ours.shape == (5,)
    assert ours.tolist() == pytest.approx([roc_auc_score(labels, row) for row in tied], abs=1e-6)
    assert SOLUTION["auroc"](torch.tensor([0.1, 0.4, 0.35, 0.8]), torch.tensor([False, False, True, True])).item() == 0.75


def test_layer_aurocs_of_real_directions_agree_with_scikit_learn(tiny_lm):
    train, test = corpus.generate(40, seed=30), corpus.generate(10, seed=31)
    directions = SOLUTION["feature_directions"](SOLUTION["residual_stack"](tiny_lm, train.tokens), train.labels)
    resid = SOLUTION["residual_stack"](tiny_lm, test.tokens)
    ours = SOLUTION["layer_aurocs"](directions, resid, test.labels)
    x, y = resid[:, :, 1:].flatten(1, 2).double(), test.labels[:, 1:].flatten(0, 1)
    for layer in range(len(resid)):
        for f in range(len(corpus.FEATURES)):
            expected = roc_auc_score(y[:, f], (x[layer] @ directions[layer, f].double()).numpy())
            assert ours[layer, f].item() == pytest.approx(expected, abs=1e-5)


def test_feature_directions_agree_with_a_loop_over_tokens_in_float64(tiny_lm):
    docs = corpus.generate(6, seed=32)
    resid = SOLUTION["residual_stack"](tiny_lm, docs.tokens)
    ours = SOLUTION["feature_directions"](resid, docs.labels)
    number = corpus.FEATURES.index("number")
    tokens_with, tokens_without = [], []
    for d in range(len(docs.tokens)):
        for p in range(1, docs.tokens.shape[1]):  # BOS left out
            (tokens_with if docs.labels[d, p, number] else tokens_without).append(resid[:, d, p].double())
    expected = torch.stack(tokens_with).mean(0) - torch.stack(tokens_without).mean(0)
    torch.testing.assert_close(ours[:, number].double(), expected, rtol=1e-4, atol=1e-5)


# --- the residual stream and the logit lens against TransformerLens ---------------------------------------


def lens_checks(model, tokens):
    """residual_stack and logit_lens against accumulated_resid, TransformerLens's logit_lens and the model's output."""
    with torch.no_grad():
        logits, cache = model.run_with_cache(tokens)
    stack = SOLUTION["residual_stack"](model, tokens)
    torch.testing.assert_close(stack, cache.accumulated_resid())
    ours = SOLUTION["logit_lens"](model, tokens)
    theirs = (cache.accumulated_resid(apply_ln=True) @ model.W_U + model.b_U).log_softmax(-1)
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4)
    tool = tl_logit_lens(model, tokens, positions=None).values.log_softmax(-1)
    torch.testing.assert_close(ours, tool, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(ours[-1], logits.log_softmax(-1), rtol=1e-4, atol=1e-4)


def test_the_logit_lens_agrees_with_transformer_lens_on_the_shipped_model(tiny_lm):
    lens_checks(tiny_lm, corpus.generate(3, seed=33).tokens)


def test_the_logit_lens_agrees_with_transformer_lens_on_gpt2s_architecture(tiny_gpt2):
    labelled = features.in_model_tokens(tiny_gpt2, corpus.generate(2, seed=34), length=24)
    lens_checks(tiny_gpt2, labelled.tokens)


def test_a_shared_final_scale_is_not_the_lens(tiny_lm):
    """TransformerLens's apply_ln_to_stack without recompute_ln divides every layer by the final scale: another
    (legitimate) tool, for decomposing the final stream; the lab's known mistake, for a lens."""
    tokens = corpus.generate(2, seed=35).tokens
    with torch.no_grad():
        _, cache = tiny_lm.run_with_cache(tokens)
    stack = cache.accumulated_resid()
    shared = (cache.apply_ln_to_stack(stack, recompute_ln=False) @ tiny_lm.W_U + tiny_lm.b_U).log_softmax(-1)
    ours = SOLUTION["logit_lens"](tiny_lm, tokens)
    torch.testing.assert_close(ours[-1], shared[-1], rtol=1e-4, atol=1e-4)
    assert (ours[0] - shared[0]).abs().max() > 0.1


# --- the direct effect is a derivative --------------------------------------------------------------------


def test_direct_logit_effect_is_the_derivative_of_the_logits_along_a_scale_preserving_direction(tiny_lm):
    """At a lone token (BOS, then one word) the mean scale is that token's scale. A direction orthogonal to the
    token's centred stream leaves the scale unchanged to first order, so the logits move by ε times the effect."""
    tokens = torch.tensor([[corpus.BOS_ID, corpus.TOKEN_ID["said"]]])
    final = f"blocks.{tiny_lm.cfg.n_layers - 1}.hook_resid_post"
    with torch.no_grad():
        _, cache = tiny_lm.run_with_cache(tokens)
    x = cache[final][0, 1].double()
    x = x - x.mean()
    v = torch.randn(tiny_lm.cfg.d_model, generator=torch.Generator().manual_seed(0)).double()
    v = v - v.mean()
    v = (v - (v @ x) / (x @ x) * x).float()  # orthogonal to the centred stream
    epsilon = 0.1

    def logits_with(shift: float) -> torch.Tensor:
        def nudge(resid, hook):
            return torch.cat([resid[:, :1], resid[:, 1:] + shift * v], dim=1)
        with torch.no_grad():
            return tiny_lm.run_with_hooks(tokens, fwd_hooks=[(final, nudge)])[0, 1]

    measured = (logits_with(epsilon) - logits_with(-epsilon)) / (2 * epsilon)  # central difference
    torch.testing.assert_close(SOLUTION["direct_logit_effect"](tiny_lm, v, tokens), measured, rtol=1e-3, atol=1e-3)


# --- direct logit attribution, by TransformerLens's tools and by ablation -------------------------------------


def test_component_dla_agrees_with_transformer_lens_and_with_zeroing_the_last_mlp(tiny_lm):
    """Per head and per MLP: the lab's DLA equals TransformerLens's stack_head_results and apply_ln_to_stack (which
    use the final scale at the last position), and for the last MLP, whose output nothing but ln_final reads, it
    equals the fall of the logit difference when that output is zeroed with the final scale held."""
    tokens = corpus.generate(6, seed=39).tokens[:, :12]
    targets, others = torch.arange(6) + 3, torch.arange(6) + 40
    dla = SOLUTION["component_dla"](tiny_lm, tokens, targets, others).detach()
    with torch.no_grad():
        _, cache = tiny_lm.run_with_cache(tokens)
    towards = (tiny_lm.W_U[:, targets] - tiny_lm.W_U[:, others]).T.detach()
    heads = cache.stack_head_results(layer=-1, pos_slice=-1, apply_ln=True)
    torch.testing.assert_close(dla[..., :-1].flatten(1), (heads * towards).sum(-1).T, rtol=1e-4, atol=1e-5)
    for layer in range(tiny_lm.cfg.n_layers):
        mlp = cache.apply_ln_to_stack(cache[f"blocks.{layer}.hook_mlp_out"][None, :, -1], layer=-1, pos_slice=-1)[0]
        torch.testing.assert_close(dla[:, layer, -1], (mlp * towards).sum(-1), rtol=1e-4, atol=1e-5)
    held = features.zero_ablation_effects(tiny_lm, tokens, targets, others, hold_scale=True)
    torch.testing.assert_close(held[:, -1, -1], dla[:, -1, -1], rtol=1e-4, atol=1e-4)
    moved = features.zero_ablation_effects(tiny_lm, tokens, targets, others, hold_scale=False)
    assert (moved[:, -1, -1] - held[:, -1, -1]).abs().max() > 1e-2  # the scale does move when it may


# --- the GPU tier's code path, on a GPT-2 built here ---------------------------------------------------------


def test_in_model_tokens_keeps_the_corpus_for_the_shipped_model(tiny_lm):
    docs = corpus.generate(4, seed=36)
    labelled = features.in_model_tokens(tiny_lm, docs)
    assert torch.equal(labelled.tokens, docs.tokens) and torch.equal(labelled.labels, docs.labels)
    assert features.word_token_ids(tiny_lm, ['"', "said"]).tolist() == [corpus.TOKEN_ID['"'], corpus.TOKEN_ID["said"]]


def test_in_model_tokens_carries_each_words_labels_to_its_bpe_pieces(tiny_gpt2):
    docs = corpus.generate(3, seed=37)
    labelled = features.in_model_tokens(tiny_gpt2, docs, length=40)
    for d in range(3):  # the same, built token by token
        tokens, labels = [tiny_gpt2.tokenizer.bos_token_id], [docs.labels[d, 0]]
        for p in range(1, docs.tokens.shape[1]):
            for piece in tiny_gpt2.tokenizer(" " + corpus.VOCAB[docs.tokens[d, p]], add_special_tokens=False).input_ids:
                tokens.append(piece)
                labels.append(docs.labels[d, p])
        assert labelled.tokens[d].tolist() == tokens[:40]
        assert torch.equal(labelled.labels[d], torch.stack(labels[:40]))
    assert len(tokens) > docs.tokens.shape[1]  # words did split into several tokens
    with pytest.raises(ValueError, match="shorter than"):
        features.in_model_tokens(tiny_gpt2, corpus.generate(1, seed=37, seq_len=4), length=64)


def test_every_exercise_runs_on_gpt2s_architecture(tiny_gpt2):
    """The lab's functions on a GPT-2 loaded like GPT-2 small: hook names, ln_final's scale, W_U, b_U all exist."""
    model = tiny_gpt2
    labelled = features.in_model_tokens(model, corpus.generate(6, seed=38), length=24)
    resid = SOLUTION["residual_stack"](model, labelled.tokens)
    assert resid.shape == (model.cfg.n_layers + 1, 6, 24, model.cfg.d_model)
    directions = SOLUTION["feature_directions"](resid, labelled.labels)
    present = labelled.labels[:, 1:].flatten(0, 1).any(0) & ~labelled.labels[:, 1:].flatten(0, 1).all(0)
    aurocs = SOLUTION["layer_aurocs"](directions[:, present], resid, labelled.labels[..., present])
    assert aurocs.shape == (model.cfg.n_layers + 1, int(present.sum())) and ((aurocs >= 0) & (aurocs <= 1)).all()
    effect = SOLUTION["direct_logit_effect"](model, directions[-1, 0], labelled.tokens)
    assert effect.shape == (model.cfg.d_vocab,) and torch.isfinite(effect).all()
    target = features.word_token_ids(model, ['"'])
    mask = torch.zeros(labelled.tokens.shape, dtype=torch.bool)
    mask[:, 1:] = True
    for layer in range(model.cfg.n_layers + 1):
        steered = SOLUTION["steered_log_probs"](model, labelled.tokens, layer, directions[layer, 0])
        assert steered.shape == (6, 24, model.cfg.d_vocab)
        effect = SOLUTION["steering_effect"](model, labelled.tokens, layer, directions[layer, 0], target, mask)
        assert torch.isfinite(effect)
    _, cache = model.run_with_cache(labelled.tokens, names_filter=lambda name: name == "blocks.0.mlp.hook_post")
    neurons = cache["blocks.0.mlp.hook_post"][:, 1:].flatten(0, 1)
    counts = SOLUTION["count_detectors"](neurons, labelled.labels[:, 1:].flatten(0, 1)[:, present], 0.7)
    assert int(counts.sum()) == model.cfg.d_mlp


def fake_hub_with_gpt2(home):
    """An offline Hugging Face cache in which "gpt2" is a tiny random GPT-2, so ``models.load("gpt2-small")`` works."""
    snapshot = home / "hub" / "models--gpt2" / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    tiny_gpt2_folder(snapshot)
    (home / "hub" / "models--gpt2" / "refs").mkdir()
    (home / "hub" / "models--gpt2" / "refs" / "main").write_text("0" * 40)
    return home


@pytest.mark.parametrize("path", [ROOT / "lessons" / "01_features.ipynb", solution_of(LAB)], ids=["lesson", "lab"])
def test_the_gpu_tier_runs_top_to_bottom_with_a_stand_in_for_gpt2_small(path, tmp_path):
    home = fake_hub_with_gpt2(tmp_path / "hf")
    run = run_notebook(path, tmp_path / "out.ipynb", cwd=path.parent,
                       env={"INTERPLAB_TIER": "gpu", "HF_HOME": str(home), "HF_HUB_OFFLINE": "1"})
    assert run.problem is None, run.problem
    errors = [o for c in run.notebook.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert errors == []
    assert "tier gpu: gpt2" in str([c.get("outputs") for c in run.notebook.cells])  # GPT-2's stand-in, not tiny-lm


# --- the inputs ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def public_answers():
    return {ex.name: run_cases(ex, SOLUTION[ex.name], ex.build_cases(PUBLIC_SEED)) for ex in get_lab(LAB).exercises}


@pytest.mark.parametrize("seed", [1, "an instructor's secret"])
def test_every_case_of_any_seed_has_an_answer_no_public_answer_fits(seed, public_answers):
    """For seeds other than the default hidden one (which ``test_hidden_cases.py`` covers): every feature occurs,
    and is absent, in every set of documents a case is built from (a topic missing from a few documents would
    make a mean, an AUROC and so the reference undefined), and no public answer fits any hidden case."""
    for ex in get_lab(LAB).exercises:
        cases = ex.build_cases(seed)
        hidden = run_cases(ex, SOLUTION[ex.name], cases)
        for case in hidden:
            assert case.value is not None and torch.isfinite(case.value.double()).all(), (ex.name, case.error)
        for j, copied in enumerate(public_answers[ex.name]):
            verdict = judge(ex, [Case(copied.value)] * len(hidden), hidden, [], lambda: cases)
            assert verdict.score == 0.0, f"public case {j} of {ex.name} answers a hidden case: {verdict.message}"


def test_the_labs_statements_about_the_model_and_the_corpus_hold(tiny_lm):
    """Part 1 of the lab says, in prose: tiny-lm has two blocks, the corpus 14 features, four of them topics."""
    assert tiny_lm.cfg.n_layers == 2
    assert len(corpus.FEATURES) == 14
    assert sum(name.startswith("topic_") for name in corpus.FEATURES) == 4


# --- the checks a student sees -----------------------------------------------------------------------------


def test_a_correct_auroc_written_with_pairwise_comparisons_passes():
    def pairwise(scores, labels):
        pos, neg = scores[..., labels], scores[..., ~labels]
        diff = pos[..., :, None] - neg[..., None, :]
        return ((diff > 0).float() + 0.5 * (diff == 0).float()).mean((-2, -1))

    assert Lab(LAB).verdict("auroc", pairwise).message == "correct on all 3 cases"


def test_random_directions_drawn_one_at_a_time_pass():
    """The check judges what random directions are, not which: any correct way of drawing them passes."""
    def one_at_a_time(direction, n, generator):
        rows = [torch.randn(direction.shape[-1], generator=generator) for _ in range(n)]
        return torch.stack([r / r.norm() for r in rows]) * direction.norm()

    assert Lab(LAB).verdict("random_directions", one_at_a_time).message == "correct on all 3 cases"


def test_directions_along_the_axes_are_not_random():
    def axes(direction, n, generator):
        return torch.eye(n, direction.shape[-1]) * direction.norm()

    assert "lie along the axes" in Lab(LAB).verdict("random_directions", axes).message
