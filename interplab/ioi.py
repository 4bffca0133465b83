"""A synthetic indirect-object-identification (IOI) task, in the words of the course's corpus.

Wang et al. (2023) found the circuit GPT-2 small uses to finish sentences like

    when anna and tom went to rome , tom gave the cake to      -> anna

The answer is the **indirect object** (IO, "anna"): the name of the first clause that is not
repeated. The other name is the **subject** (S), which appears twice: S1 in the first clause
and S2 in the second. Which of the first two names is the IO varies (the "ABBA" and "BABA"
orders of the paper), so position alone never gives the answer.

This module writes such prompts from a handful of templates, with names, places and objects
drawn from `interplab.corpus` by a `torch.Generator`, so a seed fixes every batch:

- `prompts(n, template, generator)`: clean prompts, each with its **corrupted** twin, in which
  S2 is replaced by a third name C ("... , leo gave the cake to"). The corrupted prompt has no
  repeated name, so it says nothing about which of A and B is the answer: Wang et al.'s
  "ABC" distribution, against the clean "ABB" one.
- `prompts(..., corruption="s1")` or `"io"`: the same clean prompts with C in another slot
  (`CORRUPTIONS`), to see what the ABC corruption cannot: which heads read S1 or the IO.
- `reference(n, template, generator)`: a fresh sample of that ABC distribution (three new
  names per prompt), the reference distribution whose mean activations replace the parts of
  a model outside a circuit (mean-ablation).
- `text_prompts(tokenizer, n, template, generator)`: the same for GPT-2 small (or any model
  with its own tokenizer), on some of Wang et al.'s templates (`PAPER_TEMPLATES`).

All prompts of one batch share a template, so their tokens line up position by position:
patching "position 7" means the same word slot in every prompt. The vocabulary
(`VOCAB`) is the corpus's, followed by the few template words the corpus lacks, so the ids
of corpus words are unchanged; `make_tokenizer` builds a word-level tokenizer over it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch
from jaxtyping import Int
from torch import Tensor
from transformers import PreTrainedTokenizerBase

from interplab import corpus
from interplab.vocab import BOS

#: People's names (the corpus's, the three that can also be places included).
NAMES: tuple[str, ...] = corpus.PERSONS + corpus.PERSON_OR_PLACE
PLACES: tuple[str, ...] = corpus.PLACES
OBJECTS: tuple[str, ...] = ("cake", "apple", "pie", "bread", "drink", "ball", "drum", "guitar", "violin", "cheese")
ANIMALS: tuple[str, ...] = corpus.ANIMALS

#: The templates: {A} and {B} are the first clause's names (IO and S in either order), {S} is
#: S2; {place}, {object} and {animal} are filled from the lists above. Every template ends on
#: "to", right before the answer, and has S2 as the subject of its second clause.
TEMPLATES: tuple[str, ...] = (
    "when {A} and {B} went to {place} , {S} gave the {object} to",
    "after {A} and {B} went to the park , {S} gave the {object} to",
    "while {A} and {B} were in {place} , {S} gave the {object} to",
    "{A} and {B} went to {place} . {S} gave the {object} to",
    "then , {A} and {B} had a long talk . afterwards {S} said to",
    "{A} and {B} found the {object} in {place} . {S} gave it to",
    "when {A} and {B} saw a {animal} in {place} , {S} gave the {object} to",
    "{A} and {B} had the {object} in the park . then {S} gave it to",
)
#: Template words that the corpus does not have.
EXTRA_WORDS: tuple[str, ...] = ("when", "after", "while", "then", "afterwards", ",", "gave", "were", "had", "long",
                                "talk", "found")
VOCAB: tuple[str, ...] = corpus.VOCAB + tuple(w for w in EXTRA_WORDS if w not in corpus.TOKEN_ID)
TOKEN_ID: dict[str, int] = {word: i for i, word in enumerate(VOCAB)}
D_VOCAB = len(VOCAB)
BOS_ID = TOKEN_ID[BOS]
NAME_IDS: Int[Tensor, " name"] = torch.tensor([TOKEN_ID[n] for n in NAMES])
assert all(w in TOKEN_ID for t in TEMPLATES for w in t.split() if not w.startswith("{")), "a template word is missing"


@dataclass(frozen=True)
class Prompts:
    """A batch of IOI prompts of one template, as tokens (BOS first), and what to measure.

    `io[i]` and `s[i]` are the token ids of prompt i's indirect object and subject. The
    positions say where each role sits: `s2_pos` and `end_pos` (the last token, where the
    answer is predicted) are the same for the whole batch; `io_pos` and `s1_pos` differ
    between the ABBA and BABA orders. `template` indexes the templates the batch was written
from, and `labels` names every position for plots.
    """

    clean: Int[Tensor, "batch pos"]
    corrupted: Int[Tensor, "batch pos"]
    io: Int[Tensor, " batch"]
    s: Int[Tensor, " batch"]
    io_pos: Int[Tensor, " batch"]
    s1_pos: Int[Tensor, " batch"]
    s2_pos: int
    end_pos: int
    template: int
    labels: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.clean)

    def to(self, device: str | torch.device) -> "Prompts":
        """The same prompts with every tensor on `device`."""
        return replace(self, **{f.name: getattr(self, f.name).to(device) for f in fields(self)
                                if isinstance(getattr(self, f.name), Tensor)})


def _labels(template: str) -> tuple[str, ...]:
    """A label for every position of a template: its words, with the names' roles."""
    roles = {"{A}": "A", "{B}": "B", "{S}": "S2", "{place}": "place", "{object}": "object", "{animal}": "animal"}
    return ("<bos>", *(roles.get(w, w) for w in template.split()))


def _draw(options: tuple[str, ...] | Tensor, n: int, generator: torch.Generator) -> Tensor:
    return torch.randint(len(options), (n,), generator=generator)


def _distinct_names(n: int, k: int, generator: torch.Generator) -> Int[Tensor, "n k"]:
    """k different names for each of n prompts (indices into NAMES)."""
    return torch.rand(n, len(NAMES), generator=generator).argsort(dim=1)[:, :k]


def _fill(template: int, a: str, b: str, s: str, place: str, obj: str, animal: str) -> list[int]:
    text = TEMPLATES[template].format(A=a, B=b, S=s, place=place, object=obj, animal=animal)
    return [BOS_ID, *(TOKEN_ID[w] for w in text.split())]


def _slot(template: int, name: str) -> int:
    """The position (BOS counted) of a slot in a template."""
    return 1 + TEMPLATES[template].split().index(name)


#: Ways to corrupt a clean prompt: which slot the third name C replaces.
CORRUPTIONS: dict[str, str] = {
    "abc": "S2 (the subject's second mention): no name repeats, so nothing says which is the answer",
    "s1": "S1 (the subject's first mention): no name repeats, but S2 is still the last name",
    "io": "the indirect object: the clean answer is no longer in the prompt",
}


def _check(template: int, n_templates: int, corruption: str) -> None:
    if not 0 <= template < n_templates:
        raise ValueError(f"template must be in 0..{n_templates - 1}; got {template}")
    if corruption not in CORRUPTIONS:
        raise ValueError(f"corruption must be one of {', '.join(CORRUPTIONS)}; got {corruption!r}")


def prompts(n: int, template: int, generator: torch.Generator, corruption: str = "abc") -> Prompts:
    """`n` clean IOI prompts of `TEMPLATES[template]` and their corrupted twins.

    Each prompt draws three distinct names, IO, S and the corrupting C, and whether IO comes
    first (ABBA) or second (BABA), with even odds. `corruption` says which slot C takes in the
    corrupted twin (`CORRUPTIONS`); the default, "abc", is Wang et al.'s.
    """
    _check(template, len(TEMPLATES), corruption)
    names = _distinct_names(n, 3, generator)
    io_first = torch.rand(n, generator=generator) < 0.5
    place, obj, animal = _draw(PLACES, n, generator), _draw(OBJECTS, n, generator), _draw(ANIMALS, n, generator)
    clean, corrupted = [], []
    for i in range(n):
        io, s, c = (NAMES[j] for j in names[i].tolist())
        rest = PLACES[place[i]], OBJECTS[obj[i]], ANIMALS[animal[i]]
        clean.append(_fill(template, *((io, s) if io_first[i] else (s, io)), s, *rest))
        bad_io, bad_s1, bad_s2 = (c if corruption == role else name for role, name in (("io", io), ("s1", s), ("abc", s)))
        corrupted.append(_fill(template, *((bad_io, bad_s1) if io_first[i] else (bad_s1, bad_io)), bad_s2, *rest))
    first, second = _slot(template, "{A}"), _slot(template, "{B}")
    return Prompts(
        clean=torch.tensor(clean), corrupted=torch.tensor(corrupted),
        io=NAME_IDS[names[:, 0]], s=NAME_IDS[names[:, 1]],
        io_pos=torch.where(io_first, first, second), s1_pos=torch.where(io_first, second, first),
        s2_pos=_slot(template, "{S}"), end_pos=len(clean[0]) - 1, template=template,
        labels=_labels(TEMPLATES[template]),
    )


def reference(n: int, template: int, generator: torch.Generator,
              tokenizer: PreTrainedTokenizerBase | None = None) -> Int[Tensor, "batch pos"]:
    """`n` prompts of the ABC distribution: three distinct fresh names in the A, B and S2 slots.

    These are exactly the corrupted halves of fresh prompts (`prompts`, or `text_prompts` when a
    `tokenizer` is given), drawn independently of any clean batch: the reference distribution
    whose mean activations stand in for "this head does nothing name-specific".
    """
    if tokenizer is None:
        return prompts(n, template, generator).corrupted
    return text_prompts(tokenizer, n, template, generator).corrupted


# --- GPT-2 small and the paper's templates (GPU tier) ------------------------------------------------

#: Some of Wang et al.'s templates, with the same slots, for a pretrained model with its own tokenizer.
PAPER_TEMPLATES: tuple[str, ...] = (
    "When {A} and {B} went to the {place}, {S} gave a {object} to",
    "After {A} and {B} went to the {place}, {S} gave a {object} to",
    "While {A} and {B} were working at the {place}, {S} gave a {object} to",
    "Then, {A} and {B} went to the {place}. {S} gave a {object} to",
    "Then, {A} and {B} had a long argument, and afterwards {S} said to",
    "Friends {A} and {B} found a {object} at the {place}. {S} gave it to",
)
PAPER_NAMES: tuple[str, ...] = ("Mary", "John", "Tom", "James", "Dan", "Sid", "Martin", "Amy", "Alice", "Bob", "Sarah",
                                "Paul", "Kate", "Michael", "David", "Lisa", "Mark", "Laura", "Anna", "Peter")
PAPER_PLACES: tuple[str, ...] = ("store", "park", "school", "hospital", "station", "restaurant", "office", "garden")
PAPER_OBJECTS: tuple[str, ...] = ("drink", "ball", "book", "ring", "snack", "bottle", "computer", "necklace")


def _one_token(tokenizer: PreTrainedTokenizerBase, words: tuple[str, ...]) -> tuple[str, ...]:
    """The words that are a single token after a space (so every prompt of a template has one length)."""
    return tuple(w for w in words if len(tokenizer(" " + w, add_special_tokens=False)["input_ids"]) == 1)


def text_prompts(tokenizer: PreTrainedTokenizerBase, n: int, template: int, generator: torch.Generator,
                 corruption: str = "abc") -> Prompts:
    """Like `prompts`, for a model with its own tokenizer (GPT-2 small): `PAPER_TEMPLATES[template]`
    filled with the names, places and objects that are one token each for `tokenizer`.

    Tokens start with the tokenizer's BOS token (GPT-2's <|endoftext|>), as `model.to_tokens` does.
    """
    _check(template, len(PAPER_TEMPLATES), corruption)
    names = _one_token(tokenizer, PAPER_NAMES)
    places, objects = _one_token(tokenizer, PAPER_PLACES), _one_token(tokenizer, PAPER_OBJECTS)
    if len(names) < 3 or not places or not objects:
        raise ValueError(f"too few of the paper's words are single tokens for this tokenizer: names {names}, "
                         f"places {places}, objects {objects}")
    picks = torch.rand(n, len(names), generator=generator).argsort(dim=1)[:, :3]
    io_first = torch.rand(n, generator=generator) < 0.5
    place, obj = _draw(places, n, generator), _draw(objects, n, generator)

    def encode(a: str, b: str, s: str, i: int) -> list[int]:
        text = PAPER_TEMPLATES[template].format(A=a, B=b, S=s, place=places[place[i]], object=objects[obj[i]])
        return [tokenizer.bos_token_id, *tokenizer(text, add_special_tokens=False)["input_ids"]]

    clean, corrupted = [], []
    for i in range(n):
        io, s, c = (names[j] for j in picks[i].tolist())
        first, second = (io, s) if io_first[i] else (s, io)
        bad = {role: (c if corruption == role else name) for role, name in (("io", io), ("s1", s), ("abc", s))}
        clean.append(encode(first, second, s, i))
        corrupted.append(encode(*((bad["io"], bad["s1"]) if io_first[i] else (bad["s1"], bad["io"])), bad["abc"], i))
    ids = {w: tokenizer(" " + w, add_special_tokens=False)["input_ids"][0] for w in names}
    io_ids, s_ids = (torch.tensor([ids[names[j]] for j in picks[:, k].tolist()]) for k in (0, 1))
    clean_t = torch.tensor(clean)
    s_at = clean_t == s_ids[:, None]  # [batch, pos]: where the subject is
    s1, s2 = s_at.float().argmax(dim=1), s_at.shape[1] - 1 - s_at.flip(1).float().argmax(dim=1)
    io_at = (clean_t == io_ids[:, None]).float().argmax(dim=1)
    if len(set(s2.tolist())) != 1:
        raise ValueError("S2 is not at one position in every prompt: the tokenizer splits a slot's word")
    labels = ["<bos>", *(tokenizer.decode([t]).strip() for t in clean[0][1:])]
    for role, pos in zip("AB", sorted((int(io_at[0]), int(s1[0])))):
        labels[pos] = role
    labels[int(s2[0])] = "S2"
    return Prompts(clean_t, torch.tensor(corrupted), io_ids, s_ids, io_at, s1, int(s2[0]), len(clean[0]) - 1,
                   template, tuple(labels))


def make_tokenizer() -> PreTrainedTokenizerBase:
    """A fresh tokenizer over `VOCAB`, ready for `TransformerBridge.boot_native(..., tokenizer=)`."""
    return corpus.make_tokenizer(TOKEN_ID)
