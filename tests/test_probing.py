"""Lab 05, probing: grading a class end to end, the checks' fairness, and the numbers checked independently.

One class is graded once (``classes.GradedClass``): the completed lab, the untouched lab and every known
mistake in ``autograder/mutants/05_probing.json``. Then:

- the world the second model lives in: walks are legal, deterministic and labelled with the true state;
  the trainer is deterministic; the shipped model knows the rules;
- probes: the lab's training loop and accuracy agree with scikit-learn's ``LogisticRegression`` on the
  same activations, and ``word_activations`` reads a word-piece model (GPT-2's tokenizer) at each word's
  last piece, tested on a small GPT-2 built here;
- the two checks that judge properties are fair: correct answers written differently pass, and answers that
  fool the probe without moving the model, or that never trained, fail with a reason.
"""

from __future__ import annotations

import pytest
import torch
from classes import GradedClass
from course import check_publicly, solution_functions
from sklearn.linear_model import LogisticRegression
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

from interplab import corpus, world
from interplab import models as M
from interplab.exercises import PUBLIC_SEED, get_lab
from interplab.exercises import probing as spec_module
from interplab.probing import POS, Probe, pos_of, word_activations
from interplab.reference import PACKAGE_REFERENCES, PUBLIC, References
from interplab.train import grid_world

LAB = "05_probing"
SPEC = get_lab(LAB)
SOLUTION = solution_functions(LAB, Probe=Probe, world=world)


class TestGrading(GradedClass):
    LAB = LAB
    PROPERTY_MESSAGES = {
        "hidden_layer_frozen": "your MLP probe classifies",
        "loss_on_probabilities": "of held-out examples correctly",
        "edit_wrong_sign": "the probe reads the target cell in only",
        "edit_not_projected": "lies outside the probe's directions",
    }
    #: A kernel costs most of a minute: one mistake goes the whole way, on an exercise judged by the
    #: model's response to the student's answer, measured in the grader's process.
    END_TO_END = ("edit_wrong_sign",)
    NAMES = {"Probe": Probe, "world": world}


# --- the world ------------------------------------------------------------------------------------


def test_walks_are_deterministic_legal_and_labelled_with_the_true_cells():
    walks = world.generate(200, seed=3)
    again = world.generate(200, seed=3)
    assert torch.equal(walks.tokens, again.tokens) and torch.equal(walks.cells, again.cells)
    assert not torch.equal(world.generate(200, seed=4).tokens, walks.tokens)
    assert walks.tokens.shape == (200, world.SEQ_LEN) and (walks.tokens[:, 0] == world.BOS_ID).all()
    # replay the moves: each walker moves on its own turn, never off the grid, and cells follow
    here = world.STARTS.expand(200, 2, 2).clone()
    for p in range(1, world.SEQ_LEN):
        walker, move = (p - 1) % 2, walks.tokens[:, p] - world.FIRST_MOVE_ID
        assert world.legal_moves(walks.cells[:, p - 1, walker]).gather(1, move[:, None]).all()
        here[:, walker] += world.DELTAS[move]
        assert torch.equal(world.row_col(walks.cells[:, p]), here)
    assert (walks.cells >= 0).all() and (walks.cells < world.N_CELLS).all()


def test_legal_moves_at_a_corner_an_edge_and_the_middle():
    corner, edge, middle = world.legal_moves(torch.tensor([0, 2, 12])).tolist()  # up, down, left, right
    assert corner == [False, True, False, True] and edge == [False, True, True, True] and middle == [True] * 4
    assert torch.allclose(world.move_distribution(torch.tensor(0)), torch.tensor([0, 0.5, 0, 0.5]))


def test_the_tokenizer_round_trips_a_walk():
    walks = world.generate(3, seed=0)
    tokenizer = world.make_tokenizer()
    assert torch.equal(torch.tensor(tokenizer(walks.texts())["input_ids"]), walks.tokens)


def test_grid_world_trainer_is_deterministic_and_saves_in_the_shipped_format(tmp_path):
    first, log = grid_world.train(3, progress=False)
    second, _ = grid_world.train(3, progress=False)
    a, b = first.state_dict(), second.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert log["log"][-1]["step"] == 3
    tokens = world.generate(4, seed=1).tokens
    reloaded = M.load(M.save(first, tmp_path / "m"), device="cpu")
    torch.testing.assert_close(reloaded(tokens).log_softmax(-1), first(tokens).log_softmax(-1))


def test_the_shipped_world_model_knows_the_rules():
    """On walks it never saw: close to the loss floor, and (almost) nothing on illegal moves."""
    scores = grid_world.evaluate(M.load("grid-world", "cpu"), world.generate(100, seed=12345))
    assert scores["held_out"] < scores["floor"] + 0.02
    assert scores["illegal_mass"] < 0.005


# --- probes agree with scikit-learn -------------------------------------------------------------


@pytest.fixture(scope="module")
def pos_data():
    """The tiny LM's residual stream after block 1, and part of speech, for 60 + 30 documents."""
    x, y, _ = spec_module._lm_data(777, 90, "blocks.1.hook_resid_post", "part of speech")
    n = 60 * (corpus.SEQ_LEN - 1)
    return x[:n], y[:n], x[n:], y[n:]


def test_probe_accuracy_agrees_with_scikit_learn_logistic_regression(pos_data):
    x, y, x_test, y_test = pos_data
    probe = SOLUTION["train_probe"](Probe.init(x.shape[1], len(POS), generator=torch.Generator().manual_seed(0)),
                                    x, y, 300, 0.02)
    with torch.no_grad():
        ours = float(SOLUTION["probe_accuracy"](probe, x_test, y_test))
    sklearn = LogisticRegression(max_iter=2000).fit(x.double().numpy(), y.numpy())  # multinomial, L2 (C = 1)
    theirs = sklearn.score(x_test.double().numpy(), y_test.numpy())
    assert abs(ours - theirs) < 0.01, (ours, theirs)
    # and probe_accuracy is scikit-learn's accuracy for the same weights
    probe_of_sklearn = Probe(torch.tensor(sklearn.coef_.T, dtype=torch.float32), torch.tensor(sklearn.intercept_, dtype=torch.float32))
    assert float(SOLUTION["probe_accuracy"](probe_of_sklearn, x_test, y_test)) == pytest.approx(theirs, abs=1e-6)


def test_part_of_speech_classes_are_exclusive_and_cover_every_word():
    docs = corpus.generate(50, seed=8)
    columns = docs.labels[..., [corpus.FEATURES.index(name) for name in POS[1:]]]
    assert (columns.sum(-1) <= 1).all(), "a word is at most one of noun, verb, adjective"
    classes = pos_of(docs.labels)
    assert torch.equal(classes > 0, columns.any(-1)) and torch.equal(columns.long().argmax(-1)[classes > 0] + 1, classes[classes > 0])


def gpt2_with_word_pieces(path):
    """A small GPT-2 whose byte-level BPE splits many corpus words into pieces, loaded as the GPU tier would."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=320, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus.generate(20, seed=0).texts(), trainer)
    hf_tok = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>",
                                     unk_token="<|endoftext|>")
    torch.manual_seed(0)
    GPT2LMHeadModel(GPT2Config(vocab_size=len(hf_tok), n_positions=512, n_layer=2, n_head=2, n_embd=32)).save_pretrained(path)
    hf_tok.save_pretrained(path)
    return M.load(path, device="cpu")


def test_word_activations_read_each_word_at_its_last_piece_on_a_gpt2(tmp_path):
    model = gpt2_with_word_pieces(tmp_path)
    docs = corpus.generate(3, seed=5, seq_len=20)
    hooks = ["blocks.0.hook_resid_pre", "blocks.1.hook_resid_post"]
    acts = word_activations(model, docs, hooks, batch_size=2)
    assert acts.shape == (2, 3, 20, 32)
    tokenizer = model.tokenizer
    for d, text in enumerate(docs.texts()):
        pieces = [tokenizer.encode(" " + w, add_special_tokens=False) for w in text.split(" ")]
        assert any(len(p) > 1 for p in pieces), "the test needs words split into several pieces"
        ids = [tokenizer.bos_token_id] + [i for p in pieces for i in p]
        last = [0] + torch.tensor([len(p) for p in pieces]).cumsum(0).tolist()
        _, cache = model.run_with_cache(torch.tensor([ids]))
        for h, hook in enumerate(hooks):
            torch.testing.assert_close(acts[h, d], cache[hook][0, last])
    # the tiny LM's words are its tokens: one run, no gathering
    lm = M.load("tiny-lm", "cpu")
    _, cache = lm.run_with_cache(docs.tokens)
    torch.testing.assert_close(word_activations(lm, docs, hooks)[1], cache[hooks[1]])


def test_probe_round_trips_through_flat_and_says_what_is_wrong():
    probe = Probe.init(7, 3, 5, generator=torch.Generator().manual_seed(0))
    assert probe.is_mlp and (probe.d_in, probe.n_classes, probe.d_hidden) == (7, 3, 5)
    back = Probe.from_flat(probe.flat(), 7, 3, 5)
    assert all(torch.equal(a.detach(), b) for a, b in zip(probe.parameters(), back.parameters()))
    with pytest.raises(ValueError, match="expected 58 numbers"):
        Probe.from_flat(torch.zeros(10), 7, 3, 5)
    assert not Probe.init(4, 2).is_mlp


# --- the checks that judge properties are fair ------------------------------------------------------


def train_with_minibatches_and_adamw(probe, x, y, steps, lr):
    """A correct loop written another way: shuffled mini-batches of half the data, AdamW without decay."""
    optimizer = torch.optim.AdamW(probe.parameters(), lr=lr, weight_decay=0.0)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    for step in range(2 * steps):
        rows = order[(step % 2) * len(x) // 2 : (step % 2 + 1) * len(x) // 2]
        loss = torch.nn.functional.cross_entropy(SOLUTION["probe_logits"](probe, x[rows]), y[rows])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return probe


def test_a_training_loop_written_differently_passes():
    assert check_publicly(LAB, "train_probe", train_with_minibatches_and_adamw) == "correct on all 3 cases"


def test_an_untrained_or_unreturned_probe_fails_with_a_reason():
    def forgets_to_return(probe, *args):
        SOLUTION["train_probe"](probe, *args)

    assert "did you forget to `return probe`?" in check_publicly(LAB, "train_probe", forgets_to_return)
    assert "of held-out examples correctly, the reference's" in check_publicly(LAB, "train_probe", lambda probe, *args: probe)


def test_an_edit_written_differently_passes():
    """QR of the uncentred weights spans the same directions and more: an edit within them is still fine."""
    def edit_with_qr(resid, probe, target, cell_means):
        Q = torch.linalg.qr(probe.W).Q
        return resid + ((cell_means[target] - resid) @ Q) @ Q.T

    assert check_publicly(LAB, "edit_cell", edit_with_qr) == "correct on all 2 cases"


def test_an_edit_that_fools_the_probe_but_not_the_model_fails():
    """The smallest push along probe weight differences that makes the probe read the target: the probe is
    fooled, the model is not, and the check says so (it measures the model, not the probe)."""
    def minimal_edit(resid, probe, target, cell_means):
        for _ in range(10):
            scores = resid @ probe.W + probe.b
            rival = scores.scatter(1, target[:, None], -torch.inf).argmax(-1)
            gap = scores.gather(1, rival[:, None])[:, 0] - scores.gather(1, target[:, None])[:, 0] + 2.0
            step = (probe.W[:, target] - probe.W[:, rival]).T
            resid = resid + (gap.clamp_min(0) / (step * step).sum(-1))[:, None] * step
        return resid

    message = check_publicly(LAB, "edit_cell", minimal_edit)
    assert "the model's next-move predictions follow your edit in" in message, message


def test_the_judge_measures_the_reference_edit_far_above_random_edits():
    ex = SPEC.exercise("edit_cell")
    refs = References.open(PACKAGE_REFERENCES, LAB, PUBLIC)
    for case, reference in zip(ex.build_cases(PUBLIC_SEED), refs.expected("edit_cell")):
        measures = spec_module.measure_edit(reference.value, case)
        assert measures.decoded > 0.95 and measures.success > 0.9 and measures.control < 0.2, measures
        unedited = spec_module.follows_target(spec_module.next_move_probs(case[-1].tokens, case[-1].hook, case[0]),
                                              case[-1].source, case[2])
        assert not unedited.any(), "without an edit the model follows the true cell"
