"""The CPU tier's own word-level tokenizer: 100 tokens, one English word each.

Why our own: the shipped model must load with no network, and a lesson reads
better when `model.to_str_tokens` shows "cat dog sun" rather than byte-pair
fragments. Layout (d_vocab = 100):

    0      <|bos|>  start of every sequence (also eos and pad)
    1      <|unk|>  any word not in WORDS; never seen in training
    2..99  WORDS    98 short, distinct, lower-case words

Text is split on whitespace and punctuation, so "cat dog" -> [cat, dog].
"""

import tempfile
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import AutoTokenizer, PreTrainedTokenizerBase, PreTrainedTokenizerFast

BOS, UNK = "<|bos|>", "<|unk|>"
WORDS: tuple[str, ...] = tuple("""
    cat dog bird fish cow pig hen fox owl bee ant bat rat bear wolf lion frog duck goat deer seal crab
    red blue green pink gold gray black white
    sun moon star sky rain snow wind fire ice sea lake hill rock tree leaf rose
    cup pen box bag hat key map book door bed car bus ship boat bell lamp coin ring drum kite
    bread milk rice egg cake pie tea jam
    one two three four five six seven eight nine ten
    run sit eat hop fly swim sing jump
    big small hot cold old new
""".split())
BOS_ID, UNK_ID = 0, 1
D_VOCAB = 2 + len(WORDS)
FIRST_WORD_ID = 2  # ids below this are special and never appear in training data
assert D_VOCAB == 100 and len(set(WORDS)) == len(WORDS), "WORDS must be 98 distinct words"


def build_tokenizer() -> PreTrainedTokenizerFast:
    """The tokenizer as built in memory. Don't hand this one to a model: use `make_tokenizer`."""
    vocab = {BOS: BOS_ID, UNK: UNK_ID} | {w: i + FIRST_WORD_ID for i, w in enumerate(WORDS)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.decoder = decoders.WordPiece(prefix="##")  # joins words with single spaces
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS, eos_token=BOS, pad_token=BOS, unk_token=UNK,
        model_max_length=1024,
    )


def save_tokenizer(out_dir: str | Path) -> Path:
    out_dir = Path(out_dir)
    build_tokenizer().save_pretrained(out_dir)
    return out_dir


def load_tokenizer(tok_dir: str | Path) -> PreTrainedTokenizerBase:
    """Load a saved tokenizer the way TransformerBridge wants it.

    `add_bos_token=True` must be passed at load time (transformers 5 does not save it).
    Without it, boot_native reloads the tokenizer from its folder by name, which fails
    once that folder is gone; an in-memory tokenizer fails too (KeyError 'name_or_path'),
    and one assigned to `bridge.tokenizer` after boot silently stops prepending BOS.
    """
    return AutoTokenizer.from_pretrained(str(tok_dir), add_bos_token=True)


def make_tokenizer() -> PreTrainedTokenizerBase:
    """A fresh tokenizer ready for `TransformerBridge.boot_native(..., tokenizer=)`."""
    with tempfile.TemporaryDirectory() as tmp:
        return load_tokenizer(save_tokenizer(tmp))
