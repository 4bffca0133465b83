"""The synthetic IOI task (`interplab.ioi`) and the shipped model trained on it (`ioi-3l`)."""

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from interplab import corpus, ioi
from interplab import models as M
from interplab.train import ioi as train_ioi


def words(tokens: torch.Tensor) -> list[str]:
    return [ioi.VOCAB[t] for t in tokens.tolist()]


@pytest.mark.parametrize("template", range(len(ioi.TEMPLATES)))
def test_prompts_put_every_role_where_the_positions_say(template):
    p = ioi.prompts(40, template, torch.Generator().manual_seed(template))
    rows = torch.arange(len(p))
    assert p.clean.shape == p.corrupted.shape and (p.clean[:, 0] == ioi.BOS_ID).all()
    assert (p.clean[rows, p.io_pos] == p.io).all() and (p.clean[rows, p.s1_pos] == p.s).all()
    assert (p.clean[:, p.s2_pos] == p.s).all() and (p.io != p.s).all()
    assert words(p.clean[0])[-1] == "to" and p.end_pos == p.clean.shape[1] - 1
    assert len(p.labels) == p.clean.shape[1] and p.labels[p.s2_pos] == "S2"
    # ABC: only S2 differs, and it becomes a third name
    differs = p.clean != p.corrupted
    assert differs[:, p.s2_pos].all() and differs.sum() == len(p)
    c = p.corrupted[:, p.s2_pos]
    assert (c != p.io).all() and (c != p.s).all() and torch.isin(c, ioi.NAME_IDS).all()
    # both orders occur, and the IO is never the last name before the end
    assert 0 < (p.io_pos < p.s1_pos).sum() < len(p)
    assert (p.io_pos < p.s2_pos).all()


def test_other_corruptions_replace_the_slot_they_name():
    for corruption, where in (("s1", "s1_pos"), ("io", "io_pos")):
        p = ioi.prompts(20, 0, torch.Generator().manual_seed(1), corruption)
        rows = torch.arange(len(p))
        positions = getattr(p, where)
        assert (p.clean != p.corrupted).sum() == len(p)
        assert (p.clean[rows, positions] != p.corrupted[rows, positions]).all()


def test_prompts_are_seeded_and_reference_prompts_have_three_distinct_names():
    a, b = (ioi.prompts(8, 3, torch.Generator().manual_seed(5)) for _ in range(2))
    assert torch.equal(a.clean, b.clean) and torch.equal(a.corrupted, b.corrupted)
    ref = ioi.reference(30, 3, torch.Generator().manual_seed(6))
    names = ref[:, [ioi.TEMPLATES[3].split().index(slot) + 1 for slot in ("{A}", "{B}", "{S}")]]
    assert all(len(set(row)) == 3 for row in names.tolist())


def test_the_vocabulary_extends_the_corpus_and_the_tokenizer_reads_prompts_back():
    assert ioi.VOCAB[: corpus.D_VOCAB] == corpus.VOCAB
    tokenizer = ioi.make_tokenizer()
    p = ioi.prompts(3, 4, torch.Generator().manual_seed(2))
    for row in p.clean:
        text = " ".join(words(row[1:]))
        assert tokenizer(text)["input_ids"] == row.tolist()
    with pytest.raises(ValueError, match="corruption must be one of"):
        ioi.prompts(2, 0, torch.Generator(), corruption="swap")


def test_text_prompts_for_a_tokenizer_of_its_own():
    """GPT-2's tokenizer cannot be downloaded here: a byte-level BPE trained on the templates stands in for it."""
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    fillers = " ".join(ioi.PAPER_NAMES + ioi.PAPER_PLACES + ioi.PAPER_OBJECTS)
    texts = [t.format(A="x", B="y", S="z", place="w", object="v") for t in ioi.PAPER_TEMPLATES] + [fillers]
    bpe.train_from_iterator(texts * 20, trainers.BpeTrainer(vocab_size=1000, special_tokens=["<|endoftext|>"],
                                                            initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<|endoftext|>", eos_token="<|endoftext|>")
    for template in range(len(ioi.PAPER_TEMPLATES)):
        p = ioi.text_prompts(tokenizer, 12, template, torch.Generator().manual_seed(template))
        rows = torch.arange(len(p))
        assert (p.clean[rows, p.io_pos] == p.io).all() and (p.clean[rows, p.s1_pos] == p.s).all()
        assert (p.clean[:, p.s2_pos] == p.s).all() and (p.clean[:, 0] == tokenizer.bos_token_id).all()
        assert ((p.clean != p.corrupted).sum(1) == 1).all() and p.labels[p.s2_pos] == "S2"
        assert tokenizer.decode(p.clean[0, 1:]).endswith(" to")


@pytest.fixture(scope="module")
def model():
    return M.load("ioi-3l", device="cpu")


def test_the_shipped_model_solves_the_task_on_held_out_prompts_of_every_template(model):
    """What the lesson states: (almost) always right, and by a wide margin; no preference when corrupted."""
    for template in range(len(ioi.TEMPLATES)):
        p = ioi.prompts(32, template, torch.Generator().manual_seed(500 + template))
        rows = torch.arange(len(p))
        with torch.no_grad():
            clean, corrupted = model(p.clean)[:, -1], model(p.corrupted)[:, -1]
        assert (clean.argmax(-1) == p.io).float().mean() >= 0.97, template
        assert (clean[rows, p.io] - clean[rows, p.s]).mean() > 4.0, template
        assert (corrupted[rows, p.io] - corrupted[rows, p.s]).mean().abs() < 1.0, template


def test_the_trainer_is_deterministic_and_its_log_is_shipped(tmp_path):
    first, log = train_ioi.train(12, progress=False)
    second, _ = train_ioi.train(12, progress=False)
    a, b = first.state_dict(), second.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    p = ioi.prompts(4, 0, torch.Generator().manual_seed(0))
    reloaded = M.load(M.save(first, tmp_path / "m"), device="cpu")
    torch.testing.assert_close(reloaded(p.clean).log_softmax(-1), first(p.clean).log_softmax(-1))
    shipped = (M.SHIPPED["ioi-3l"] / "training_log.json").read_text()
    assert '"accuracy"' in shipped and '"logit_diff"' in shipped
