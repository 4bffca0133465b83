"""The synthetic corpus with ground truth, and the tiny LM trained on it."""

import json
import math

import pytest
import torch

from interplab import corpus as C
from interplab import models as M
from interplab.train import tiny_lm

HELD_OUT_SEED = 12345  # neither the training seed (0) nor its held-out seed (1)


@pytest.fixture(scope="module")
def docs() -> C.Corpus:
    return C.generate(300, HELD_OUT_SEED)


@pytest.fixture(scope="module")
def model():
    return M.load("tiny-lm", device="cpu")


def words(corpus: C.Corpus, doc: int) -> list[str]:
    return [corpus.vocab[i] for i in corpus.tokens[doc].tolist()]


def test_generate_is_deterministic_per_seed_and_longer_corpora_extend_shorter_ones():
    a, b = C.generate(40, 5), C.generate(40, 5)
    assert torch.equal(a.tokens, b.tokens) and torch.equal(a.labels, b.labels) and torch.equal(a.topics, b.topics)
    shorter = C.generate(15, 5)
    assert torch.equal(shorter.tokens, a.tokens[:15]) and torch.equal(shorter.labels, a.labels[:15])
    assert not torch.equal(C.generate(40, 6).tokens, a.tokens)
    assert a.tokens.shape == (40, C.SEQ_LEN) and a.labels.shape == (40, C.SEQ_LEN, len(C.FEATURES))
    assert C.generate(3, 5, seq_len=10).tokens.shape == (3, 10)
    with pytest.raises(ValueError, match="n_docs"):
        C.generate(0, 5)


def test_seed_0_is_still_the_corpus_the_shipped_model_learnt():
    """Any change to the grammar or the word lists changes this text: then retrain the tiny LM."""
    assert C.generate(1, 0).texts()[0] == (
        'sam saw a duck in berlin . mia said " we will go to lima ! " eva said " i can play our catchy drum '
        'in london ! " " you must sing ! " said sydney . tom said " we can hum at 9 . " ben saw a fox in '
        "madrid . sam counted six seven eight . sydney"
    ), "the corpus changed: retrain with `python -m interplab.train.tiny_lm`"
    shipped = json.loads((M.SHIPPED["tiny-lm"] / "tokenizer" / "tokenizer.json").read_text())["model"]["vocab"]
    assert C.TOKEN_ID == shipped, "the vocabulary changed: retrain the tiny LM"


def test_tokens_are_bos_then_known_words_and_the_tokenizer_round_trips(docs):
    assert (docs.tokens[:, 0] == C.BOS_ID).all() and (docs.tokens[:, 1:] > C.UNK_ID).all()
    assert not docs.labels[:, 0].any(), "BOS carries no feature"
    tokenizer = C.make_tokenizer()
    assert torch.equal(torch.tensor(tokenizer(docs.texts())["input_ids"]), docs.tokens)
    typed = tokenizer('anna said "i like 12 cakes."')["input_ids"]
    assert [C.VOCAB[i] for i in typed] == [C.BOS, "anna", "said", '"', "i", "like", "1", "2", C.UNK, ".", '"']


def test_every_token_between_quote_marks_is_flagged_and_no_other(docs):
    quote = docs.feature("quote")
    for d in range(len(docs.tokens)):
        inside = False
        for p, word in enumerate(words(docs, d)):
            if word == '"':
                assert not quote[d, p], "the quote marks themselves are not inside"
                inside = not inside
            else:
                assert quote[d, p] == inside, (d, p, word)
    assert 0.1 < quote.float().mean() < 0.3


def test_token_level_features_follow_the_word_lists(docs):
    def in_list(names: tuple[str, ...]) -> torch.Tensor:
        return torch.isin(docs.tokens, torch.tensor([C.TOKEN_ID[w] for w in names]))

    assert torch.equal(docs.feature("number"), in_list(C.DIGITS + C.NUMBER_WORDS))
    assert torch.equal(docs.feature("animal"), in_list(C.ANIMALS))
    assert not (docs.feature("person") & ~in_list(C.PERSONS + C.PERSON_OR_PLACE)).any()
    assert not (docs.feature("place") & ~in_list(C.PLACES + C.PERSON_OR_PLACE)).any()
    entity = docs.feature("person") | docs.feature("place") | docs.feature("animal")
    assert not (entity & ~docs.feature("noun")).any(), "names and animals are nouns"
    topic = docs.labels[:, 1:, : len(C.TOPICS)]
    assert (topic.sum(-1) == 1).all() and (topic.float().argmax(-1) == docs.topics[:, None]).all()


def test_context_decides_ambiguous_words(docs):
    """Same word, different label: the reason a model must read context to recover them."""
    seen: dict[tuple[str, str], set[bool]] = {}
    labels = docs.labels.tolist()
    for d in range(len(docs.tokens)):
        ws = words(docs, d)
        for p, word in enumerate(ws):
            label = dict(zip(C.FEATURES, labels[d][p]))
            for feature in ("noun", "verb", "person", "place", "positive", "negative"):
                seen.setdefault((word, feature), set()).add(label[feature])
            if word in C.PERSON_OR_PLACE:
                assert label["place"] == (ws[p - 1] in ("to", "in")) != label["person"], (d, p, ws[p - 2 : p + 2])
            if word in C.GOOD + C.BAD + C.LIKE + C.HATE + C.LIKED + C.HATED:
                negated = "not" in ws[max(0, p - 2) : p]
                positive = (word in C.GOOD + C.LIKE + C.LIKED) != negated
                assert label["positive"] == positive != label["negative"], (d, p, ws[p - 3 : p + 1])
    for word in ("rain", "run", "dance", "drink"):
        assert seen[(word, "noun")] == seen[(word, "verb")] == {True, False}, word
    for word in C.PERSON_OR_PLACE:
        assert seen[(word, "person")] == seen[(word, "place")] == {True, False}, word
    assert seen[("good", "positive")] == seen[("like", "negative")] == {True, False}


def test_shipped_tiny_lm_loads_offline_and_predicts_held_out_text_far_better_than_chance(model, docs):
    assert model.cfg.d_vocab == C.D_VOCAB and model.cfg.n_ctx == C.SEQ_LEN and not model.cfg.attn_only
    assert model.to_str_tokens(model.to_tokens("anna said \" i love my soup ! \"")) == [
        C.BOS, "anna", "said", '"', "i", "love", "my", "soup", "!", '"']
    with torch.no_grad():
        loss = tiny_lm.held_out_loss(model, docs.tokens)
    uniform = math.log(C.D_VOCAB)  # 5.32 nats; the shipped model measures about 1.66
    assert loss < uniform - 3.0, loss
    assert loss < tiny_lm.unigram_loss(C.generate(300, 0).tokens, docs.tokens) - 2.5, loss
    with torch.no_grad():
        untrained = tiny_lm.held_out_loss(M.random_init("tiny-lm", seed=3, device="cpu"), docs.tokens)
    assert untrained > uniform - 0.5, untrained


def test_mlp_and_residual_hooks_read_and_splice(model, docs):
    """What an SAE lab does: cache MLP hidden activations and the residual stream, then run
    the model with a replacement spliced in through a hook."""
    tokens = docs.tokens[:8]
    cfg = model.cfg
    names = [f"blocks.{layer}.{hook}" for layer in range(cfg.n_layers)
             for hook in ("mlp.hook_pre", "mlp.hook_post", "hook_resid_post")]
    logits, cache = model.run_with_cache(tokens, names_filter=lambda name: name in names)
    for layer in range(cfg.n_layers):
        post = cache[f"blocks.{layer}.mlp.hook_post"]
        assert post.shape == (*tokens.shape, cfg.d_mlp)
        assert cache[f"blocks.{layer}.hook_resid_post"].shape == (*tokens.shape, cfg.d_model)
        gelu = torch.nn.functional.gelu(cache[f"blocks.{layer}.mlp.hook_pre"], approximate="tanh")
        torch.testing.assert_close(post, gelu, msg="hook_post holds the activations after the nonlinearity")

    def splice(name):
        return (name, lambda act, hook: cache[name])

    same = model.run_with_hooks(
        tokens, fwd_hooks=[splice("blocks.0.mlp.hook_post"), splice("blocks.1.hook_resid_post")]
    )
    torch.testing.assert_close(same, logits)
    loss = model(tokens, return_type="loss")
    # layer 0's MLP does much of the work (about 1.7 -> 5.7 nats when zeroed), so splices there show
    def zero(act, hook):
        return torch.zeros_like(act)

    def mean(act, hook):
        return act.mean((0, 1)).expand_as(act)

    zeroed = model.run_with_hooks(tokens, return_type="loss", fwd_hooks=[("blocks.0.mlp.hook_post", zero)])
    mean_resid = model.run_with_hooks(tokens, return_type="loss", fwd_hooks=[("blocks.0.hook_resid_post", mean)])
    assert zeroed > loss + 2.0 and mean_resid > loss + 2.0, (loss, zeroed, mean_resid)


def test_linear_probes_find_contextual_features_in_the_trained_model_only(model):
    """Topic, quotation and sentiment need context; a random twin's residual stream lacks them."""
    train, test = C.generate(150, HELD_OUT_SEED + 1), C.generate(80, HELD_OUT_SEED + 2)
    positive_rate = test.labels[:, 1:].float().mean((0, 1))
    baseline = torch.maximum(positive_rate, 1 - positive_rate)
    hook = "blocks.1.hook_resid_post"
    trained = tiny_lm.probe_features(model, train, test, hook)
    untrained = tiny_lm.probe_features(M.random_init("tiny-lm", seed=3, device="cpu"), train, test, hook)
    for feature in ("topic_food", "topic_music", "quote", "positive", "negative"):
        i = C.FEATURES.index(feature)
        error, chance = 1 - trained[i], 1 - baseline[i]
        assert error < 0.6 * chance, (feature, trained[i], baseline[i])
        assert trained[i] > untrained[i] + 0.3 * chance, (feature, trained[i], untrained[i])


def test_trainer_is_deterministic():
    first, log = tiny_lm.train(3, progress=False)
    second, _ = tiny_lm.train(3, progress=False)
    a, b = first.state_dict(), second.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert [row["step"] for row in log["log"]] == [3] and log["baselines"]["uniform"] == round(math.log(C.D_VOCAB), 4)
