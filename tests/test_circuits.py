"""Lab 08, circuit tracing: grading a class end to end, and the lab's answers checked independently.

One class is graded once (``classes.GradedClass``): the completed lab, the untouched lab and every known
mistake in ``autograder/mutants/08_circuits.json``. Then:

- the training check is fair: a correct loop written differently passes, an untrained or unreturned
  transcoder fails with a reason;
- the solution's answers agree with independent implementations on the grader's own cases: the library's
  ``interplab.attribution`` (replacement logits, the logit's row of the adjacency, influence, ablation),
  scikit-learn (FVU as 1 - R², precision), finite differences, and the replacement's linearity (every node's
  direct effect adds up to the logit, less what the nodes' zero gives).
"""

import pytest
import torch
from classes import GradedClass
from course import ROOT, check_publicly, solution_functions
from sklearn.metrics import precision_score, r2_score

from interplab import attribution
from interplab.exercises import circuits as spec_module
from interplab.grading.references import load_mutants
from interplab.transcoder import MLP_IN_HOOK, MLP_OUT_HOOK, Transcoder, mlp_io

LAB = "08_circuits"
NAMES = {"Transcoder": Transcoder, "MLP_IN_HOOK": MLP_IN_HOOK, "MLP_OUT_HOOK": MLP_OUT_HOOK, "mlp_io": mlp_io}
SOLUTION = solution_functions(LAB, **NAMES)
#: Cases drawn by a seed that is neither the public one nor the default references' hidden one.
SEED = "test-circuits"


class TestGrading(GradedClass):
    LAB = LAB
    #: What the training check (which measures the trained transcoder, and cannot name a mistake) says.
    PROPERTY_MESSAGES = {"same_batch_every_step": "on a fresh random batch every step",
                         "target_is_input": "it must predict the MLP's output y from its input x"}
    #: Through nbgrader and the sandbox: a training mistake (judged by what the transcoder does on held-out tokens)
    #: and a replacement that drops the error terms (value-judged, and called by the next exercise's cell).
    END_TO_END = ("same_batch_every_step", "errors_dropped")
    NAMES = NAMES

    def test_an_exercise_that_calls_a_wrong_one_is_not_told_a_mistake_it_did_not_make(self, graded):
        """With signed influence, pruning keeps one feature fewer on the hidden cases: the very answer of the known
        mistake one_short. Its message would send the student to fix a pruning that is right."""
        details = graded["mutant-signed_adjacency"].details
        one_short = next(m for m in load_mutants(ROOT, LAB) if m.name == "one_short")
        assert one_short.message not in details
        assert "calls your influence, which is wrong too" in details


def cases(exercise: str) -> list[tuple]:
    """The exercise's cases as the grader builds them, from this file's seed."""
    return spec_module.LAB.exercise(exercise).build_cases(SEED)


# --- the training check is fair -------------------------------------------------------------------


def train_differently(tc, x, y, steps, batch_size, lr, generator):
    """A correct loop written another way: shuffled epochs of batches, AdamW without decay, the mean over every
    number (the squared error per token over d_model, a constant factor the learning rate absorbs in Adam)."""
    optimizer = torch.optim.AdamW(tc.parameters(), lr=lr, weight_decay=0.0)
    order = torch.randperm(len(x), generator=generator)
    for step in range(steps):
        start = (step * batch_size) % (len(x) - batch_size)
        rows = order[start:start + batch_size]
        loss = torch.nn.functional.mse_loss(tc(x[rows]), y[rows])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return tc


def test_a_correct_training_loop_written_differently_passes():
    assert check_publicly(LAB, "train_transcoder", train_differently) == "correct on its one case"


def test_returning_nothing_or_an_untrained_transcoder_fails_with_a_reason():
    def forgets_to_return(tc, *args):
        SOLUTION["train_transcoder"](tc, *args)

    assert "did you forget to `return tc`?" in check_publicly(LAB, "train_transcoder", forgets_to_return)
    assert "did not change" in check_publicly(LAB, "train_transcoder", lambda tc, *args: tc)


# --- the metrics agree with scikit-learn ----------------------------------------------------------


def test_fvu_is_one_minus_scikit_learns_variance_weighted_r2():
    for tc, x, y in cases("fvu"):
        with torch.no_grad():
            prediction = tc(x)
        r2 = r2_score(y.double().numpy(), prediction.double().numpy(), multioutput="variance_weighted")
        assert float(SOLUTION["fvu"](tc, x, y)) == pytest.approx(1 - r2, abs=1e-5)


def test_label_precision_is_scikit_learns_precision_of_firing_as_a_prediction():
    z, labels = cases("label_precision")[0]
    precision = SOLUTION["label_precision"](z, labels)
    fires, has = (z[:, 1:] > 0).flatten(0, 1), labels[:, 1:].flatten(0, 1)
    frequent = fires.sum(0).topk(5).indices.tolist()  # latents that fire, so precision is defined
    for latent in frequent:
        for label in range(labels.shape[-1]):
            want = precision_score(has[:, label].numpy(), fires[:, latent].numpy(), zero_division=0)
            assert float(precision[latent, label]) == pytest.approx(want, abs=1e-6)
    never = (fires.sum(0) == 0).nonzero().flatten()
    assert bool((precision[never] == 0).all())


# --- the replacement and the graph agree with the library -------------------------------------------


def test_replacement_logits_agree_with_the_librarys_local_replacement_on_perturbed_features():
    for model, tcs, tokens, features in cases("replacement_logits"):
        library = attribution.LocalReplacement(model, tcs, tokens).forward(features)
        lab = SOLUTION["replacement_logits"](model, tcs, tokens, features)
        assert torch.allclose(lab, library, atol=1e-4), float((lab - library).abs().max())


def test_with_the_prompts_own_features_the_replacement_is_the_real_model():
    for model, tcs, tokens, _ in cases("replacement_logits"):
        own = [tc.encode(mlp_io(model, tokens[None], layer)[0]) for layer, tc in enumerate(tcs)]
        with torch.no_grad():
            real = model(tokens[None])[0]
        assert torch.allclose(SOLUTION["replacement_logits"](model, tcs, tokens, own), real, atol=1e-4)


def test_direct_effects_are_the_logit_row_of_the_librarys_graph():
    for model, tcs, tokens, target in cases("logit_attribution"):
        graph = attribution.attribution_graph(model, tcs, tokens, target)
        effects = SOLUTION["logit_attribution"](model, tcs, tokens, target)
        assert torch.allclose(effects, graph.adjacency[-1, :-1], atol=1e-4)


def test_direct_effects_add_up_to_the_logit_less_the_replacements_value_at_zero():
    """The replacement is affine in its nodes, so their direct effects sum to logit(nodes) - logit(0): no node
    left out, none counted twice."""
    for model, tcs, tokens, target in cases("logit_attribution"):
        effects = SOLUTION["logit_attribution"](model, tcs, tokens, target)
        replacement = attribution.LocalReplacement(model, tcs, tokens)
        with torch.no_grad():
            zero = replacement.forward([torch.zeros_like(z) for z in replacement.features],
                                       [torch.zeros_like(e) for e in replacement.errors],
                                       torch.zeros_like(replacement.embedding))[-1, target]
        logit = replacement.logits[-1, target]
        assert float(effects.sum()) == pytest.approx(float(logit - zero), abs=2e-3)


def test_a_features_direct_effect_is_its_finite_difference_in_the_replacement():
    model, tcs, tokens, target = cases("logit_attribution")[0]
    effects = SOLUTION["logit_attribution"](model, tcs, tokens, target)
    replacement = attribution.LocalReplacement(model, tcs, tokens)
    active = [(layer, p, f) for layer, z in enumerate(replacement.features) for p, f in (z > 0).nonzero().tolist()]
    with torch.no_grad():
        base, eps = replacement.forward()[-1, target], 1e-2
    for i in range(0, len(active), max(1, len(active) // 10)):
        layer, p, f = active[i]
        moved = [z.clone() for z in replacement.features]
        moved[layer][p, f] *= 1 + eps
        with torch.no_grad():
            change = replacement.forward(moved)[-1, target] - base
        assert float(change) / eps == pytest.approx(float(effects[i]), abs=2e-3)


def test_influence_agrees_with_the_librarys_closed_form():
    """The lab sums A + A² + ... term by term; the library solves (I - A)⁻¹ - I."""
    for adjacency, logit in cases("influence"):
        assert torch.allclose(SOLUTION["influence"](adjacency, logit), attribution.influence(adjacency, logit),
                              atol=1e-5)


def test_pruning_keeps_the_features_the_librarys_prune_ranks_first():
    """The lab's node mask is the library's before it prunes edges: the same features, ranked by influence."""
    for adjacency, activations, is_feature, threshold in cases("prune_features"):
        keep = SOLUTION["prune_features"](adjacency, activations, is_feature, threshold)
        scores = attribution.influence(adjacency, len(adjacency) - 1)[is_feature]
        want = attribution._top_share(scores, threshold)
        assert torch.equal(keep[is_feature], want)
        assert bool(keep[~is_feature].all())


def test_ablating_features_agrees_with_the_librarys_steering_at_scale_zero():
    for model, tcs, tokens, features in cases("ablate_features"):
        lab = SOLUTION["ablate_features"](model, tcs, tokens, features)
        library = attribution.ablate_features(model, tcs, tokens[None], features)[0]
        assert torch.allclose(lab, library, atol=1e-5)

