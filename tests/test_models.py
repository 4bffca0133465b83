"""The models layer: device choice, tokenizer, shipped model, trainer and the one loader."""

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

from interplab import models as M
from interplab.data import repeated_random_batch, repeated_tokens
from interplab.device import pick_device
from interplab.train import induction
from interplab.vocab import BOS_ID, UNK_ID


@pytest.fixture(scope="module")
def model():
    return M.load("attn-only-2l", device="cpu")


@pytest.fixture(scope="module")
def rep_tokens():
    return repeated_tokens(50, 20, torch.Generator().manual_seed(7))


def test_pick_device_prefers_accelerators_and_rejects_missing_ones():
    best = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    assert pick_device().type == best
    assert pick_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="not available"):
            pick_device("cuda")


def test_tokenizer_prepends_bos_and_round_trips(model):
    tokens = model.to_tokens("cat dog cat dog")
    assert tokens[0, 0].item() == BOS_ID
    assert model.to_str_tokens(tokens) == ["<|bos|>", "cat", "dog", "cat", "dog"]
    assert model.to_string(tokens[0, 1:]) == "cat dog cat dog"
    assert model.to_tokens("cat zebra", prepend_bos=False)[0, 1].item() == UNK_ID


def test_training_batches_are_seeded_and_hold_one_repeat():
    batch = next(repeated_random_batch(16, 48, torch.Generator().manual_seed(0)))
    again = next(repeated_random_batch(16, 48, torch.Generator().manual_seed(0)))
    assert torch.equal(batch, again) and batch.shape == (16, 48)
    assert (batch[:, 0] == BOS_ID).all() and (batch[:, 1:] > UNK_ID).all()


def test_shipped_model_loads_offline_and_reloads_identically(model, rep_tokens):
    assert not model.training
    assert torch.equal(model(rep_tokens), M.load("attn-only-2l", device="cpu")(rep_tokens))


def test_shipped_model_supports_the_course_api(model, rep_tokens):
    cfg = model.cfg
    batch, seq = rep_tokens.shape
    _, cache = model.run_with_cache(rep_tokens)
    assert cache["pattern", 1].shape == (batch, cfg.n_heads, seq, seq)
    assert cache["z", 0].shape == (batch, seq, cfg.n_heads, cfg.d_head)
    assert cache["embed"].shape == cache["pos_embed"].shape == (batch, seq, cfg.d_model)
    assert model.W_E.shape == (cfg.d_vocab, cfg.d_model) and model.W_U.shape == (cfg.d_model, cfg.d_vocab)
    assert model.W_pos.shape == (cfg.n_ctx, cfg.d_model)
    assert model.OV.shape == model.QK.shape == (cfg.n_layers, cfg.n_heads, cfg.d_model, cfg.d_model)
    assert model.all_composition_scores("K").shape == (cfg.n_layers, cfg.n_heads) * 2

    def zero_head_0(z, hook):
        z[:, :, 0] = 0.0
        return z

    seen = {}
    loss = model(rep_tokens, return_type="loss")
    ablated = model.run_with_hooks(
        rep_tokens,
        return_type="loss",
        fwd_hooks=[
            ("blocks.0.attn.hook_z", zero_head_0),
            ("blocks.1.attn.hook_pattern", lambda p, hook: seen.update(shape=p.shape)),
        ],
    )
    assert seen["shape"] == (batch, cfg.n_heads, seq, seq)
    assert ablated > loss + 0.1


def test_shipped_model_has_previous_token_and_induction_heads(model, rep_tokens):
    scores = induction.evaluate(model, rep_tokens, span=20)
    previous, ind = torch.tensor(scores["previous"]), torch.tensor(scores["induction"])
    assert previous[0].max() > 0.8, previous
    assert (ind[1] > 0.6).sum() >= 4, ind
    assert ind[0].max() < 0.2 and previous[1].max() < 0.2
    assert scores["loss_first"] - scores["loss_second"] > 3.0


def test_trainer_is_deterministic_and_save_load_round_trips(tmp_path, rep_tokens):
    first, log = induction.train(30, progress=False)
    second, _ = induction.train(30, progress=False)
    a, b = first.state_dict(), second.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert log["log"][-1]["step"] == 30
    reloaded = M.load(M.save(first, tmp_path / "m"), device="cpu")
    torch.testing.assert_close(reloaded(rep_tokens).log_softmax(-1), first(rep_tokens).log_softmax(-1))


def tiny_gpt2_folder(path):
    """A two-layer GPT-2 and a byte-level BPE tokenizer, saved like Hub models are."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<|endoftext|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(["the cat sat on the mat", "a dog ran after the cat"] * 20, trainer)
    eot = "<|endoftext|>"
    hf_tok = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=eot, eos_token=eot, unk_token=eot)
    torch.manual_seed(0)
    hf_model = GPT2LMHeadModel(GPT2Config(vocab_size=len(hf_tok), n_positions=64, n_layer=2, n_head=2, n_embd=32))
    hf_model.save_pretrained(path)
    hf_tok.save_pretrained(path)
    return hf_model.eval()


def test_local_hf_folder_loads_and_matches_transformers(tmp_path):
    hf_model = tiny_gpt2_folder(tmp_path)
    bridge = M.load(tmp_path, device="cpu")
    tokens = bridge.to_tokens("the cat sat on the mat")
    with torch.no_grad():
        expected = hf_model(tokens).logits.log_softmax(-1)
    # compatibility mode centres the unembedding: logits shift by a constant, log-probs do not
    torch.testing.assert_close(bridge(tokens).log_softmax(-1), expected, atol=1e-4, rtol=1e-4)
    assert bridge.run_with_cache(tokens)[1]["pattern", 1].shape == (1, 2, tokens.shape[1], tokens.shape[1])


def test_gpt2_small_without_hub_access_says_how_to_fix_it():
    with pytest.raises(M.ModelUnavailableError, match="internet.*attn-only-2l"):
        M.load("gpt2-small", device="cpu")


def test_unknown_model_lists_known_names():
    with pytest.raises(ValueError, match="attn-only-2l.*gpt2-small"):
        M.load("gpt-7", device="cpu")
