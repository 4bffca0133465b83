"""Synthetic token sequences in which only repetition is predictable.

Random tokens carry no information, so the one way to beat chance is to notice
that a span has been seen before and copy what followed it: exactly the job of
an induction head. All randomness goes through a `torch.Generator`, so a seed
fixes every batch.
"""

from collections.abc import Iterator

import torch
from jaxtyping import Int
from torch import Tensor

from interplab.vocab import BOS_ID, D_VOCAB, FIRST_WORD_ID


def random_words(shape: tuple[int, ...], generator: torch.Generator) -> Int[Tensor, "..."]:
    """Uniform random word tokens, never BOS or UNK."""
    return torch.randint(FIRST_WORD_ID, D_VOCAB, shape, generator=generator)


def repeated_random_batch(
    batch_size: int,
    seq_len: int,
    generator: torch.Generator,
    min_span: int = 4,
    max_span: int = 20,
) -> Iterator[Int[Tensor, "batch seq_len"]]:
    """Endless training batches: BOS, random words, and one span copied later on.

    Each row draws its own span length in [min_span, max_span], its own start and
    its own gap before the copy. A fixed length or offset would let the model
    predict the copy from position alone instead of learning induction.
    """
    if not 1 <= min_span <= max_span or 2 * max_span > seq_len - 1:
        raise ValueError(
            f"need 1 <= min_span <= max_span and two spans inside seq_len - 1; got "
            f"min_span={min_span}, max_span={max_span}, seq_len={seq_len}. Lower max_span or raise seq_len."
        )
    pos = torch.arange(seq_len)
    while True:
        tokens = random_words((batch_size, seq_len), generator)
        tokens[:, 0] = BOS_ID
        span = torch.randint(min_span, max_span + 1, (batch_size, 1), generator=generator)
        room = seq_len - 1 - 2 * span  # free positions shared between lead-in and gap
        lead = (torch.rand((batch_size, 1), generator=generator) * (room + 1)).long()
        gap = (torch.rand((batch_size, 1), generator=generator) * (room - lead + 1)).long()
        first = 1 + lead
        second = first + span + gap
        in_copy = (pos >= second) & (pos < second + span)
        yield tokens.gather(1, torch.where(in_copy, pos - second + first, pos))


def repeated_tokens(batch_size: int, span: int, generator: torch.Generator) -> Int[Tensor, "batch seq"]:
    """BOS, then `span` random words, then the same words again (length 1 + 2 * span).

    The fixed layout makes scoring simple: the token at position q of the second
    copy last occurred at q - span, so an induction head attends to q - span + 1.
    """
    words = random_words((batch_size, span), generator)
    return torch.cat([torch.full((batch_size, 1), BOS_ID), words, words], dim=1)
