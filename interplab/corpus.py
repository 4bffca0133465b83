"""A synthetic English-like corpus in which every token says which features it carries.

Why synthetic: a lab that asks "did you find the quotation feature?" needs to know where
quotations really are. Here a small grammar writes the text and labels each token as it
writes it, so the ground truth is exact, and the words are real English words so that
`model.to_str_tokens` reads like text:

    <|bos|> anna said " i do not like the salty soup . " the dog will eat a fresh apple at 7 .

Every document has one topic (food, weather, sport or music) that decides most of its
nouns, verbs and adjectives, so topic can only be read from context. Other features need
context too: "rain" is a noun in "the cold rain" and a verb in "it will rain"; "jordan" is a
person in "jordan said" and a place in "went to jordan"; "not" turns "good" negative; only
the quote marks say whether a token is inside a quotation.

The features (`FEATURES`), each a yes/no label per token; BOS carries none:

    topic_food, topic_weather, topic_sport, topic_music
                every token of a document about that topic (exactly one per document)
    person      a person's name used as a person          anna, tom, jordan said ...
    place       a place name used as a place              rome, oslo, to jordan ...
    animal      an animal noun                             dog, owl ...
    noun        any noun, common or proper (so person, place and animal tokens are nouns)
    verb        a lexical verb (not the auxiliaries will, can, must, did, do, is, was)
    adjective   any adjective, sentiment adjectives included
    number      a digit 0-9 or a number word one-ten
    quote       strictly between an opening and a closing quote mark (the marks are not)
    positive    a sentiment word (good, love ...) that is not negated
    negative    a negative sentiment word (bad, hate ...) that is not negated, or a
                positive one that is ("not good", "did not like"); "not" flips either way

`generate(n_docs, seed)` returns a `Corpus` of fixed-length documents (BOS, then sentences
cut off at `seq_len`), the same for the same seed on any machine (Python's `random.Random`
drives it), and a prefix of a longer corpus with the same seed. The tokenizer
(`make_tokenizer`) is word-level like `interplab.vocab`'s, over this corpus's own words.
"""

import random
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from jaxtyping import Bool, Int
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from torch import Tensor
from transformers import PreTrainedTokenizerBase, PreTrainedTokenizerFast

from interplab.vocab import BOS, UNK, load_tokenizer

FEATURES: tuple[str, ...] = (
    "topic_food", "topic_weather", "topic_sport", "topic_music",
    "person", "place", "animal",
    "noun", "verb", "adjective",
    "number", "quote", "positive", "negative",
)
TOPICS: tuple[str, ...] = ("food", "weather", "sport", "music")
SEQ_LEN = 64  # tokens per document, BOS included: the shipped tiny LM's n_ctx
_BIT = {name: 1 << i for i, name in enumerate(FEATURES)}


@dataclass(frozen=True)
class Lexicon:
    """One topic's content words. Some words belong to two classes or two topics on purpose."""

    nouns: tuple[str, ...]
    verbs: tuple[str, ...]  # take an object: "will VERB the NOUN"
    intransitive: tuple[str, ...]  # stand alone: "will VERB"
    adjectives: tuple[str, ...]


LEXICONS: dict[str, Lexicon] = {
    "food": Lexicon(
        nouns=("soup", "bread", "cake", "apple", "rice", "cheese", "tea", "milk", "pie", "salad", "egg",
               "drink", "cook"),
        verbs=("eat", "cook", "bake", "taste", "drink", "share"),
        intransitive=("eat", "cook", "bake"),
        adjectives=("sweet", "salty", "fresh", "ripe", "spicy", "crisp", "hot"),
    ),
    "weather": Lexicon(
        nouns=("rain", "snow", "wind", "sun", "cloud", "storm", "sky", "fog", "frost", "ice"),
        verbs=("watch", "feel", "fear", "paint"),
        intransitive=("rain", "snow", "freeze"),  # with the subject "it"
        adjectives=("cold", "warm", "wet", "dry", "cloudy", "windy", "hot"),
    ),
    "sport": Lexicon(
        nouns=("ball", "goal", "team", "game", "race", "match", "coach", "run", "swim"),
        verbs=("kick", "throw", "win", "lose", "play", "catch"),
        intransitive=("run", "swim", "train", "jump"),
        adjectives=("fast", "strong", "tired", "quick", "fit"),
    ),
    "music": Lexicon(
        nouns=("song", "drum", "piano", "guitar", "band", "tune", "dance", "concert", "violin", "choir"),
        verbs=("sing", "play", "hum", "write"),
        intransitive=("sing", "dance", "hum", "clap"),
        adjectives=("loud", "quiet", "slow", "soft", "sweet", "catchy"),
    ),
}
PERSONS = ("anna", "ben", "tom", "mia", "sam", "lily", "max", "zoe", "leo", "eva")
PLACES = ("rome", "london", "tokyo", "cairo", "lima", "oslo", "delhi", "berlin", "madrid", "dublin")
PERSON_OR_PLACE = ("jordan", "florence", "sydney")  # the sentence decides which
ANIMALS = ("dog", "cat", "bird", "horse", "cow", "fox", "owl", "bear", "duck", "goat")
GOOD, BAD = ("good", "great", "nice", "lovely", "happy"), ("bad", "awful", "sad", "boring", "nasty")
LIKE, HATE = ("like", "love", "enjoy"), ("hate", "dislike")
LIKED, HATED = ("liked", "loved", "enjoyed"), ("hated", "disliked")
DIGITS = tuple("0123456789")
NUMBER_WORDS = ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
TIME_NOUNS = ("days", "hours")
OTHER_NOUNS = ("score", "degrees", "park", "morning", *TIME_NOUNS)
OTHER_VERBS = ("said", "went", "saw", "lives", "counted", "go")
FUNCTION_WORDS = (
    "the", "a", "an", "my", "your", "our", "it", "they", "he", "she", "i", "we", "you",
    "is", "was", "will", "can", "must", "did", "do", "not", "very", "and", "to", "in", "at", "for", "with",
    ".", "!", '"',
)
#: How often each kind of sentence comes up, per topic: action, opinion, quotation, travel,
#: numbers. Unequal on purpose, so that even the word after a full stop hints at the topic.
SENTENCE_WEIGHTS: dict[str, tuple[float, ...]] = {
    "food": (0.25, 0.35, 0.2, 0.1, 0.1),
    "weather": (0.35, 0.15, 0.15, 0.15, 0.2),
    "sport": (0.25, 0.15, 0.2, 0.1, 0.3),
    "music": (0.2, 0.2, 0.35, 0.15, 0.1),
}


def _vocab() -> tuple[str, ...]:
    """Every word the grammar can write, each once, in a fixed order: BOS and UNK first."""
    words = [*FUNCTION_WORDS, *OTHER_NOUNS, *OTHER_VERBS, *PERSONS, *PLACES, *PERSON_OR_PLACE, *ANIMALS, *GOOD, *BAD,
             *LIKE, *HATE, *LIKED, *HATED, *DIGITS, *NUMBER_WORDS]
    for lexicon in LEXICONS.values():
        words += [*lexicon.nouns, *lexicon.verbs, *lexicon.intransitive, *lexicon.adjectives]
    return (BOS, UNK, *dict.fromkeys(words))


VOCAB: tuple[str, ...] = _vocab()
TOKEN_ID: dict[str, int] = {word: i for i, word in enumerate(VOCAB)}
D_VOCAB = len(VOCAB)
BOS_ID, UNK_ID = TOKEN_ID[BOS], TOKEN_ID[UNK]
assert D_VOCAB <= 256, f"the corpus vocabulary has {D_VOCAB} words; the tiny LM is sized for at most 256"


@dataclass(frozen=True)
class Corpus:
    """Documents as token ids, with each token's ground-truth features.

    `labels[d, p, f]` says whether token `p` of document `d` has feature `FEATURES[f]`;
    `topics[d]` indexes `TOPICS`. Token ids index `vocab` and match `make_tokenizer()`,
    so `model.to_tokens(corpus.texts()[d])` gives back `corpus.tokens[d]`.
    """

    tokens: Int[Tensor, "doc pos"]
    labels: Bool[Tensor, "doc pos feature"]
    topics: Int[Tensor, " doc"]
    vocab: tuple[str, ...] = VOCAB

    def feature(self, name: str) -> Bool[Tensor, "doc pos"]:
        """One feature's labels, by name."""
        if name not in FEATURES:
            raise KeyError(f"no feature {name!r}; the features are {', '.join(FEATURES)}")
        return self.labels[..., FEATURES.index(name)]

    def texts(self) -> list[str]:
        """Each document as text, without BOS (the tokenizer adds it back)."""
        return [" ".join(self.vocab[i] for i in doc[1:]) for doc in self.tokens.tolist()]


def generate(n_docs: int, seed: int, seq_len: int = SEQ_LEN) -> Corpus:
    """`n_docs` documents of `seq_len` tokens (BOS first), deterministic in `seed`."""
    if n_docs < 1 or seq_len < 2:
        raise ValueError(f"need n_docs >= 1 and seq_len >= 2 (BOS and one word); got {n_docs}, {seq_len}")
    rng = random.Random(seed)
    tokens, masks, topics = [], [], []
    for _ in range(n_docs):
        topic = rng.randrange(len(TOPICS))
        words, tags = _document(_Grammar(rng, LEXICONS[TOPICS[topic]], TOPICS[topic]), seq_len)
        tokens.append([TOKEN_ID[w] for w in words])
        masks.append(tags)
        topics.append(topic)
    bits = torch.tensor(masks, dtype=torch.int64).unsqueeze(-1) >> torch.arange(len(FEATURES))
    return Corpus(torch.tensor(tokens), (bits & 1).bool(), torch.tensor(topics))


def _document(grammar: "_Grammar", seq_len: int) -> tuple[list[str], list[int]]:
    """BOS, then whole sentences, cut off at `seq_len`; every word but BOS gets the topic."""
    words, tags = [BOS], [0]
    while len(words) < seq_len:
        for word, tag in grammar.sentence():
            words.append(word)
            tags.append(tag | _BIT[f"topic_{grammar.topic}"])
    return words[:seq_len], tags[:seq_len]


Tagged = list[tuple[str, int]]  # words with their feature bits


class _Grammar:
    """Writes one document's sentences, tagging each word as it goes.

    Content words come from the document's topic 85% of the time, else from any topic,
    so a single word is weak evidence of the topic and the context must be read.
    """

    def __init__(self, rng: random.Random, lexicon: Lexicon, topic: str):
        self.rng, self.lexicon, self.topic = rng, lexicon, topic

    # -- words ---------------------------------------------------------------------------
    def pick(self, words: tuple[str, ...]) -> str:
        return words[self.rng.randrange(len(words))]

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def lex(self) -> Lexicon:
        if self.chance(0.85):
            return self.lexicon
        return LEXICONS[self.pick(TOPICS)]

    def person(self) -> Tagged:
        return [(self.pick(PERSONS + PERSON_OR_PLACE), _BIT["person"] | _BIT["noun"])]

    def place(self) -> Tagged:
        return [(self.pick(PLACES + PERSON_OR_PLACE), _BIT["place"] | _BIT["noun"])]

    def number(self, value: int | None = None, digits: bool | None = None) -> Tagged:
        digits = self.chance(0.5) if digits is None else digits
        if value is None:
            value = self.rng.randrange(10) if digits else 1 + self.rng.randrange(10)
        return [(DIGITS[value] if digits else NUMBER_WORDS[value - 1], _BIT["number"])]

    def noun_phrase(self, lexicon: Lexicon | None = None, speaking: bool = False) -> Tagged:
        """the|a|an [adjective] noun; in speech my|your|our|the [adjective] noun."""
        lexicon = lexicon or self.lex()
        words: Tagged = []
        if self.chance(0.5):
            words.append((self.pick(lexicon.adjectives), _BIT["adjective"]))
        words.append((self.pick(lexicon.nouns), _BIT["noun"]))
        if speaking:
            article = self.pick(("my", "your", "our", "the"))
        else:
            article = "the" if self.chance(0.6) else "an" if words[0][0][0] in "aeiou" else "a"
        return [(article, 0), *words]

    def subject(self) -> Tagged:
        """Who acts outside quotations: a person, an animal or a third-person pronoun."""
        roll = self.rng.random()
        if roll < 0.5:
            return self.person()
        if roll < 0.8:
            return [("the", 0), (self.pick(ANIMALS), _BIT["animal"] | _BIT["noun"])]
        return [(self.pick(("they", "he", "she")), 0)]

    def tail(self) -> Tagged:
        """An optional where, when or with whom."""
        roll = self.rng.random()
        if roll < 0.45:
            return []
        if roll < 0.6:
            return [("in", 0), *self.place()]
        if roll < 0.7:
            return [("with", 0), *self.person()]
        if roll < 0.8:
            return [("at", 0), *self.number()]
        if roll < 0.9:
            return [("for", 0), *self.number(), (self.pick(TIME_NOUNS), _BIT["noun"])]
        return [("in", 0), ("the", 0), (self.pick(("park", "morning")), _BIT["noun"])]

    def sentiment(self, verb_forms: tuple[tuple[str, ...], tuple[str, ...]] | None = None,
                  negated: bool = False) -> Tagged:
        """A sentiment adjective (or verb, from `verb_forms`), labelled after "not" is applied."""
        good = self.chance(0.5)
        pool = (verb_forms[0] if good else verb_forms[1]) if verb_forms else (GOOD if good else BAD)
        polarity = "positive" if good != negated else "negative"
        return [(self.pick(pool), _BIT[polarity] | _BIT["verb" if verb_forms else "adjective"])]

    # -- clauses -------------------------------------------------------------------------
    def action(self, subject: Tagged, speaking: bool = False) -> Tagged:
        """subject will|can|must verb [the noun], or, on weather days, "it will rain"."""
        lexicon = self.lex()
        aux = (self.pick(("will", "can", "must")), 0)
        if self.chance(0.35):
            if lexicon is LEXICONS["weather"]:
                subject = [("it", 0)]
            return [*subject, aux, (self.pick(lexicon.intransitive), _BIT["verb"]), *self.tail()]
        verb = (self.pick(lexicon.verbs), _BIT["verb"])
        return [*subject, aux, verb, *self.noun_phrase(lexicon, speaking), *self.tail()]

    def opinion(self, speaking: bool) -> Tagged:
        """A judgement that "not" may flip: "the soup was not very good", "i do not like my tea"."""
        negated = self.chance(0.35)
        if self.chance(0.5):
            copula = self.pick(("is", "was"))
            subject = [("it", 0)] if speaking and self.chance(0.5) else self.noun_phrase(speaking=speaking)
            very = [("very", 0)] if self.chance(0.3) else []
            return [*subject, (copula, 0), *([("not", 0)] if negated else []), *very, *self.sentiment(negated=negated)]
        if speaking:
            who, forms = [(self.pick(("i", "we", "you")), 0)], (LIKE, HATE)
            negation = [("do", 0), ("not", 0)]
        else:
            who, forms = self.subject(), (LIKED, HATED)
            negation = [("did", 0), ("not", 0)]
        if negated:
            forms = (LIKE, HATE)
        feeling = self.sentiment(forms, negated)  # drawn before the noun phrase: the order fixes the corpus
        return [*who, *(negation if negated else []), *feeling, *self.noun_phrase(speaking=speaking)]

    def counting(self) -> Tagged:
        """Consecutive numbers, all digits or all words: predictable once started."""
        digits = self.chance(0.5)
        length = 3 + self.rng.randrange(4)
        first = self.rng.randrange(11 - length) + (0 if digits else 1)
        return [tag for value in range(first, first + length) for tag in self.number(value, digits)]

    def quoted(self) -> Tagged:
        """What someone says: first person, present tense, "my" and "your" rather than "the"."""
        roll = self.rng.random()
        if roll < 0.35:
            return self.action([(self.pick(("i", "we", "you")), 0)], speaking=True)
        if roll < 0.7:
            return self.opinion(speaking=True)
        if roll < 0.85:
            return [("we", 0), ("will", 0), ("go", _BIT["verb"]), ("to", 0), *self.place()]
        return self.counting()

    def end(self, clause: Tagged, default: str = ".") -> tuple[str, int]:
        """The closing mark: "!" after a positive judgement, "." after a negative one.

        This is what makes sentiment worth representing: to predict the mark, the model
        must know the polarity of the judgement, "not" included.
        """
        tags = 0
        for _, tag in clause:
            tags |= tag
        if tags & _BIT["positive"]:
            return ("!", 0)
        if tags & _BIT["negative"]:
            return (".", 0)
        return (default, 0)

    # -- sentences -----------------------------------------------------------------------
    def sentence(self) -> Tagged:
        """One sentence; how often each kind comes up depends on the topic (`SENTENCE_WEIGHTS`)."""
        kinds = {
            "action": lambda: self.action(self.subject()),
            "opinion": lambda: self.opinion(speaking=False),
            "quotation": None,
            "travel": self.travel,
            "numbers": self.numbers,
        }
        roll, total = self.rng.random(), 0.0
        for kind, weight in zip(kinds, SENTENCE_WEIGHTS[self.topic]):
            total += weight
            if roll < total:
                break  # float round-off past the last weight leaves the last kind: fine
        if kind == "quotation":
            return self.quotation()
        clause = kinds[kind]()
        return [*clause, self.end(clause)]

    def quotation(self) -> Tagged:
        """anna said " ... ! "   or   " ... . " said anna ."""
        inside = [(word, tag | _BIT["quote"]) for word, tag in self.quoted()]
        mark, _ = self.end(inside, default=self.pick((".", "!")))
        inside.append((mark, _BIT["quote"]))
        said = ("said", _BIT["verb"])
        if self.chance(0.6):
            return [*self.person(), said, ('"', 0), *inside, ('"', 0)]
        return [('"', 0), *inside, ('"', 0), said, *self.person(), (".", 0)]

    def travel(self) -> Tagged:
        roll = self.rng.random()
        if roll < 0.4:
            who = self.person() + ([("and", 0), *self.person()] if self.chance(0.3) else [])
            return [*who, ("went", _BIT["verb"]), ("to", 0), *self.place(), *self.tail()]
        if roll < 0.7:
            return [*self.person(), ("saw", _BIT["verb"]), ("a", 0),
                    (self.pick(ANIMALS), _BIT["animal"] | _BIT["noun"]), ("in", 0), *self.place()]
        return [*self.person(), ("lives", _BIT["verb"]), ("in", 0), *self.place()]

    def numbers(self) -> Tagged:
        roll = self.rng.random()
        if roll < 0.5:
            return [*self.person(), ("counted", _BIT["verb"]), *self.counting()]
        if self.topic == "sport" or (self.topic != "weather" and roll < 0.75):
            return [("the", 0), ("score", _BIT["noun"]), ("was", 0), *self.number(), ("to", 0), *self.number()]
        return [("it", 0), ("was", 0), *self.number(), ("degrees", _BIT["noun"]), ("in", 0), *self.place()]


def build_tokenizer(token_id: dict[str, int] = TOKEN_ID) -> PreTrainedTokenizerFast:
    """The tokenizer as built in memory. Don't hand this one to a model: use `make_tokenizer`.

    Words split on spaces, every punctuation mark and every digit stands alone, so typed
    text such as 'anna said "i like 12 cakes."' tokenizes the way the corpus writes it.
    `token_id` is the vocabulary: the corpus's, or a superset of it (`interplab.ioi`'s).
    """
    tok = Tokenizer(models.WordLevel(token_id, unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation(), pre_tokenizers.Digits(individual_digits=True),
    ])
    tok.decoder = decoders.WordPiece(prefix="##")  # joins words with single spaces
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=BOS, eos_token=BOS, pad_token=BOS, unk_token=UNK, model_max_length=1024,
    )


def save_tokenizer(out_dir: str | Path, token_id: dict[str, int] = TOKEN_ID) -> Path:
    out_dir = Path(out_dir)
    build_tokenizer(token_id).save_pretrained(out_dir)
    return out_dir


def make_tokenizer(token_id: dict[str, int] = TOKEN_ID) -> PreTrainedTokenizerBase:
    """A fresh tokenizer ready for `TransformerBridge.boot_native(..., tokenizer=)`."""
    with tempfile.TemporaryDirectory() as tmp:
        return load_tokenizer(save_tokenizer(tmp, token_id))
