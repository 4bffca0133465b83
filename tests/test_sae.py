"""Lab 04, sparse autoencoders: grading a class end to end, and the measurements checked independently.

One class is graded once (``classes.GradedClass``): the completed lab, the untouched lab and every known
mistake in ``autograder/mutants/04_sae.json``. Then:

- the training check is fair: correct loops written differently pass, and the solution clears
  the feature-recovery threshold with margin on toy data of several seeds;
- the lab's metrics (L0, explained variance, dead latents, MMCS, loss recovered) agree with a
  second implementation written here (float64, other formulas, the loss from the logits), and
  with the grader's own measurements in ``interplab.exercises.sae``.
"""

import pytest
import torch
import torch.nn.functional as F
from classes import GradedClass
from course import check_publicly, read, solution_functions, solution_of

from interplab import corpus
from interplab.exercises import PUBLIC_SEED, get_lab
from interplab.exercises import sae as spec_module
from interplab.reference import PACKAGE_REFERENCES, PUBLIC, References
from interplab.sae import LM_HOOK, SAE, lm_activations, toy_activations, toy_features

LAB = "04_sae"
SPEC = get_lab(LAB)
SOLUTION = solution_functions(LAB, SAE=SAE)


class TestGrading(GradedClass):
    LAB = LAB
    PROPERTY_MESSAGES = {"no_zero_grad": "recovers the true features poorly", "no_renormalise": "unit norm",
                         "same_batch_every_step": "random batch"}
    #: A kernel each costs half a minute (the lab trains SAEs): one mistake goes the whole way, on the
    #: exercise whose answer is converted in the kernel and judged by its properties.
    END_TO_END = ("same_batch_every_step",)
    NAMES = {"SAE": SAE}


# --- the training check is fair -------------------------------------------------------------------


def train_differently(sae, activations, steps, batch_size, lr, l1_coeff, generator):
    """A correct loop written another way: epochs of shuffled batches, AdamW without decay, b_dec left at 0."""
    encode, decode = SOLUTION["encode"], SOLUTION["decode"]
    optimizer = torch.optim.AdamW(sae.parameters(), lr=lr, weight_decay=0.0)
    order = torch.randperm(len(activations), generator=generator)
    for step in range(steps):
        start = (step * batch_size) % (len(activations) - batch_size)
        x = activations[order[start:start + batch_size]]
        z = encode(sae, x)
        loss = ((decode(sae, z) - x) ** 2).sum(1).mean() + (l1_coeff * z.sum(1).mean() if sae.k is None else 0)
        optimizer.zero_grad()
        loss.backward()
        with torch.no_grad():
            unit = sae.W_dec / sae.W_dec.norm(dim=1, keepdim=True)
            sae.W_dec.grad -= (sae.W_dec.grad * unit).sum(1, keepdim=True) * unit
        optimizer.step()
        with torch.no_grad():
            sae.W_dec.data = sae.W_dec / sae.W_dec.norm(dim=1, keepdim=True)
    return sae


def test_a_correct_training_loop_written_differently_passes():
    assert check_publicly(LAB, "train_sae", train_differently) == "correct on all 3 cases"


def test_returning_nothing_or_an_untrained_sae_fails_with_a_reason():
    def forgets_to_return(sae, *args):
        SOLUTION["train_sae"](sae, *args)

    assert "did you forget to `return sae`?" in check_publicly(LAB, "train_sae", forgets_to_return)
    assert "did not change" in check_publicly(LAB, "train_sae", lambda sae, *args: sae)


@pytest.mark.parametrize("k, l1_coeff", [(None, 0.3), (4, 0.0)], ids=["L1", "TopK"])
def test_the_solution_recovers_toy_features_with_margin_over_the_threshold(k, l1_coeff):
    """Sharkey et al.'s set-up, three seeds: MMCS well above the check's threshold every time."""
    for seed in range(3):
        generator = torch.Generator().manual_seed(seed)
        features = toy_features(48, 24, generator)
        sae = SAE.init(24, 96, k=k, generator=generator)
        SOLUTION["train_sae"](sae, toy_activations(features, 20_000, 0.06, generator), 600, 256, 1e-2, l1_coeff, generator)
        cosines = features.double() @ (sae.W_dec.detach().double() / sae.W_dec.detach().double().norm(dim=1, keepdim=True)).T
        assert cosines.max(dim=1).values.mean() > spec_module.MMCS_THRESHOLD + 0.05


def test_knowing_the_true_features_does_not_pass_without_a_trained_encoder():
    """The toy cases' true features are the judge's alone (they never reach a graded kernel); even a
    student who had them, with a decoder made of them and the tied encoder at its best threshold but
    no training, must still fail on reconstruction."""
    ex = SPEC.exercise("train_sae")
    refs = References.open(PACKAGE_REFERENCES, LAB, PUBLIC)
    for case, reference in list(zip(ex.build_cases(PUBLIC_SEED), refs.expected("train_sae")))[:2]:
        sae, held_out = case[0], case[-1]
        features = held_out.features
        spare = toy_features(sae.d_sae - len(features), sae.d_in, torch.Generator().manual_seed(0))
        W_dec = torch.cat([features, spare])
        verdicts = []
        for threshold in torch.linspace(0.0, 1.0, 21).tolist():
            b_enc = torch.cat([torch.full((len(features),), -threshold), torch.full((len(spare),), -100.0)])
            cheat = SAE(W_dec.T.clone(), b_enc, W_dec, torch.zeros(sae.d_in), k=sae.k)
            verdicts.append(spec_module.check_train(cheat.flat(), reference.value, case))
        assert all(v is not None and "of the held-out variance" in v for v in verdicts), verdicts


# --- the metrics agree with a second implementation -----------------------------------------------


@pytest.fixture(scope="module")
def trained_on_the_tiny_lm():
    """A TopK SAE trained by the solution on the tiny LM, and held-out data to measure it on."""
    model = spec_module._tiny_lm()
    docs = corpus.generate(260, seed=11)
    acts = lm_activations(model, docs.tokens)[:, 1:]
    train, test = acts[:240].flatten(0, 1), acts[240:].flatten(0, 1)
    sae = SOLUTION["train_sae"](SAE.init(128, 256, k=16, generator=torch.Generator().manual_seed(0)),
                                train, 400, 256, 1e-2, 0.0, torch.Generator().manual_seed(1))
    return model, sae, test, docs.tokens[240:]


def test_l0_dead_latents_and_explained_variance_agree_with_float64_formulas(trained_on_the_tiny_lm):
    _, sae, x, _ = trained_on_the_tiny_lm
    with torch.no_grad():
        z = SOLUTION["encode"](sae, x)
        x_hat = SOLUTION["decode"](sae, z)
    frequencies = SOLUTION["fire_frequencies"](z)
    ev = SOLUTION["explained_variance"](x, x_hat)

    x64, x_hat64, z64 = x.double(), x_hat.double(), z.double()
    active = (z64 != 0).double()
    assert torch.isclose(frequencies.sum().double(), active.sum(1).mean(), rtol=1e-6)  # L0
    assert torch.equal(frequencies == 0, active.sum(0) == 0)  # dead latents
    variance = ((x64 - x64.mean(0)) ** 2).sum(0)  # per dimension, then pooled
    assert abs(float(ev) - float(1 - ((x64 - x_hat64) ** 2).sum(0).sum() / variance.sum())) < 1e-5

    measured = spec_module.measure(sae, spec_module.HeldOut(x))  # the grader's own measurements
    assert abs(measured.l0 - float(frequencies.sum())) < 1e-4
    assert abs(measured.explained_variance - float(ev)) < 1e-5
    assert measured.dead_fraction == pytest.approx(float((frequencies == 0).double().mean()))


def test_loss_recovered_agrees_with_cross_entropy_on_the_logits(trained_on_the_tiny_lm):
    model, sae, _, tokens = trained_on_the_tiny_lm
    clean, spliced, ablated, recovered = SOLUTION["loss_recovered"](model, sae, tokens, LM_HOOK).tolist()

    def loss_with(replace) -> float:
        """Mean next-token cross-entropy computed from the logits, with positions 1: replaced."""
        def hook(activation, hook):
            patched = activation.clone()
            patched[:, 1:] = replace(activation[:, 1:])
            return patched
        with torch.no_grad():
            logits = model.run_with_hooks(tokens, return_type="logits", fwd_hooks=[(LM_HOOK, hook)])
        return float(F.cross_entropy(logits[:, :-1].flatten(0, 1).double(), tokens[:, 1:].flatten()))

    reconstruct = lambda a: spec_module._encode(sae, a) @ sae.W_dec + sae.b_dec  # noqa: E731 (the grader's encoder)
    expected = [loss_with(lambda a: a), loss_with(reconstruct), loss_with(torch.zeros_like)]
    assert [clean, spliced, ablated] == pytest.approx(expected, abs=1e-4)
    assert recovered == pytest.approx((expected[2] - expected[1]) / (expected[2] - expected[0]), abs=1e-3)
    assert spliced - clean == pytest.approx(spec_module.measure(sae, spec_module.HeldOut(
        lm_activations(model, tokens)[:, 1:].flatten(0, 1), tokens=tokens)).loss_increase, abs=1e-4)


def test_mmcs_is_one_for_a_dictionary_that_holds_every_feature_and_agrees_with_the_grader():
    features = toy_features(10, 6, torch.Generator().manual_seed(3))
    shuffled = torch.cat([features[torch.randperm(10)] * 2.5, torch.randn(5, 6)])
    assert float(SOLUTION["mmcs"](shuffled, features)) == pytest.approx(1.0, abs=1e-6)
    held_out = spec_module.HeldOut(torch.randn(50, 6), features=features)
    sae = SAE(shuffled.T, torch.zeros(15), shuffled, torch.zeros(6))
    assert spec_module.measure(sae, held_out).mmcs == pytest.approx(1.0, abs=1e-6)


# --- the SAE container ----------------------------------------------------------------------------


def test_sae_init_has_unit_decoder_rows_and_a_tied_encoder_and_round_trips_through_flat():
    sae = SAE.init(7, 12, k=3, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(sae.W_dec.norm(dim=1), torch.ones(12))
    assert torch.equal(sae.W_enc, sae.W_dec.T) and all(w.requires_grad for w in sae.parameters())
    back = SAE.from_flat(sae.flat(), 7, 12, k=3)
    assert all(torch.equal(a.detach(), b) for a, b in zip(sae.parameters(), back.parameters()))
    with pytest.raises(ValueError, match="expected 187 numbers"):
        SAE.from_flat(torch.zeros(10), 7, 12)
    with pytest.raises(ValueError, match="k=13"):
        SAE.init(7, 12, k=13)


# --- the exercises of parts 1, 4 and 5 agree with computations done another way ---------------------


def test_batchtopk_keeps_what_a_threshold_at_the_kb_th_largest_latent_keeps():
    """BatchTopK, one batch: every ReLU latent at or above the (k × batch)-th largest of the batch survives."""
    generator = torch.Generator().manual_seed(0)
    sae = SAE.init(6, 20, k=3, generator=generator, batch_topk=True)
    x = torch.randn(50, 6, generator=generator) * torch.linspace(0.1, 3.0, 50)[:, None]  # quiet and busy examples
    with torch.no_grad():
        z = SOLUTION["encode_batchtopk"](sae, x)
        pre = torch.relu((x - sae.b_dec) @ sae.W_enc + sae.b_enc)
    threshold = pre.flatten().sort(descending=True).values[3 * 50 - 1]
    assert torch.equal(z, pre * (pre >= threshold))
    per_example = (z > 0).sum(1)
    assert per_example.sum() == 150 and per_example.min() < 3 < per_example.max()  # k on average, unevenly
    assert torch.equal(SOLUTION["encode_batchtopk"](sae, x.view(5, 10, 6)).detach(), z.view(5, 10, 20))  # any leading axes
    assert torch.equal(spec_module._encode(sae, x), z)  # the grader's own encoder agrees


def test_a_latents_logit_effect_is_what_its_direction_adds_to_the_logits_after_the_last_layernorm():
    """In compatibility mode the final LayerNorm's weights are folded into W_U, so adding a direction to its
    normalised output moves every logit by exactly direction @ W_U: checked through the model's own forward."""
    model = spec_module._tiny_lm()
    sae = SAE.init(model.cfg.d_model, 32, generator=torch.Generator().manual_seed(0))
    tokens = corpus.generate(2, seed=5).tokens
    direction = sae.W_dec[7].detach()
    with torch.no_grad():
        clean = model(tokens)
        pushed = model.run_with_hooks(tokens, fwd_hooks=[("ln_final.hook_normalized", lambda a, hook: a + direction)])
        effect = SOLUTION["logit_effect"](model, sae, 7)
    assert torch.allclose(pushed - clean, effect.expand_as(clean), atol=1e-4)


def test_ablating_a_latent_agrees_with_cross_entropy_on_patched_logits_and_changes_nothing_before_it_fires():
    model = spec_module._tiny_lm()
    docs = corpus.generate(40, seed=7).tokens
    acts = lm_activations(model, docs[:32])[:, 1:].flatten(0, 1)
    sae = spec_module._data_sae(spec_module.Inputs(0, "t"), acts, 128, 8, "topk")
    tokens, latent = docs[32:], 5
    change = SOLUTION["ablate_latent"](model, sae, tokens, LM_HOOK, latent)

    def per_token_loss(hooks) -> torch.Tensor:
        with torch.no_grad():
            logits = model.run_with_hooks(tokens, return_type="logits", fwd_hooks=hooks)
        return F.cross_entropy(logits[:, :-1].transpose(1, 2).double(), tokens[:, 1:], reduction="none")

    def remove(activation, hook):
        patched = activation.clone()
        z = spec_module._encode(sae, activation[:, 1:].flatten(0, 1))[:, latent].view(len(tokens), -1, 1)
        patched[:, 1:] -= z * sae.W_dec[latent]
        return patched

    expected = per_token_loss([(LM_HOOK, remove)]) - per_token_loss([])
    assert torch.allclose(change.double(), expected, atol=1e-4)
    fires = spec_module._encode(sae, lm_activations(model, tokens)[:, 1:].flatten(0, 1))[:, latent].view(len(tokens), -1) > 0
    first = fires.float().argmax(1) + 1  # the first position (BOS counted) where the latent fires, per document
    before = torch.arange(change.shape[1])[None] < first[:, None]
    assert fires.any() and change[before].abs().max() < 1e-5  # nothing upstream of a firing can change


def test_steering_the_mlp_output_is_steering_the_residual_stream_after_the_block():
    """blocks.0's output is added to the residual stream, so adding a direction to it or to blocks.1.hook_resid_pre
    gives the same predictions."""
    model = spec_module._tiny_lm()
    tokens = corpus.generate(3, seed=9).tokens
    direction = F.normalize(torch.randn(model.cfg.d_model, generator=torch.Generator().manual_seed(4)), dim=0)
    at_mlp = SOLUTION["steer"](model, tokens, LM_HOOK, direction, 6.0)
    at_residual = SOLUTION["steer"](model, tokens, "blocks.1.hook_resid_pre", direction, 6.0)
    assert torch.allclose(at_mlp, at_residual, atol=1e-4)
    assert torch.allclose(at_mlp.exp().sum(-1), torch.ones(at_mlp.shape[:-1]), atol=1e-5)  # log-probabilities
    assert torch.allclose(SOLUTION["steer"](model, tokens, LM_HOOK, direction, 0.0), model(tokens).log_softmax(-1), atol=1e-5)


def test_resampling_points_each_dead_latent_at_a_distinct_worst_example_and_leaves_the_rest():
    generator = torch.Generator().manual_seed(0)
    sae = SAE.init(6, 16, k=3, generator=generator)
    x = torch.randn(40, 6, generator=generator) + 0.5
    dead = torch.zeros(16, dtype=torch.bool)
    dead[[2, 9, 11]] = True
    before = [w.detach().clone() for w in sae.parameters()]
    with torch.no_grad():
        z = spec_module._encode(sae, x)
    error = (x - (z @ sae.W_dec + sae.b_dec)).detach().double()
    worst = error.pow(2).sum(1).argsort(descending=True)[:3]
    after = SOLUTION["resample_dead"](sae, x, dead)
    W_enc, b_enc, W_dec, b_dec = (w.detach().double() for w in after.parameters())
    assert torch.allclose(W_dec[dead], F.normalize(error[worst], dim=1), atol=1e-6)
    assert torch.allclose(W_enc[:, dead], W_dec[dead].T) and torch.all(b_enc[dead] == 0)
    assert torch.equal(W_dec[~dead], before[2][~dead].double()) and torch.equal(W_enc[:, ~dead], before[0][:, ~dead].double())
    assert torch.equal(b_dec, before[3].double())


# --- feedback on mistakes no mutant names, and what the reference runs skip ---------------------------


def test_mistakes_without_a_mutant_still_get_a_pointed_hint():
    """The judge's own diagnoses, on this lab's public cases: a count for a fraction is a constant factor, and
    logits for log-probabilities are off by one constant per row (the log-normaliser)."""
    count = lambda z: (z > 0).float().sum(dim=0)  # noqa: E731
    assert "30× the expected everywhere" in check_publicly(LAB, "fire_frequencies", count)

    def steer_logits(model, tokens, hook_name, direction, coeff):
        hook = lambda a, hook: torch.cat([a[:, :1], a[:, 1:] + coeff * direction], dim=1)  # noqa: E731
        with torch.no_grad():
            return model.run_with_hooks(tokens, fwd_hooks=[(hook_name, hook)])

    assert "each slice along the last axis is off by its own constant" in check_publicly(LAB, "steer", steer_logits)


def test_the_reference_runs_stop_at_the_last_check():
    """Part 6 (exploring, ungraded) records nothing, so the runs that make references leave it out."""
    from interplab.grading.references import through_last_check

    solution = read(solution_of(LAB))
    cut = through_last_check(solution)
    graded = [c for c in solution.cells if c.metadata.get("nbgrader", {}).get("grade")]
    assert cut.cells[-1].metadata["nbgrader"]["grade_id"] == graded[-1].metadata["nbgrader"]["grade_id"]
    assert len(graded) == len(SPEC.exercises) and len(cut.cells) < len(solution.cells)
    assert not any(line.startswith("## Part 6") for c in cut.cells for line in c.source.splitlines())
