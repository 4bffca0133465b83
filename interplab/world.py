"""Two walkers on a grid: a synthetic world whose state the tokens never spell out.

Module 05 needs a model with a *latent world state*, something it must track to predict its
input but that no token names, as Othello-GPT tracks the board (Li et al. 2023). Here:

    <|bos|> right down left down up right right down ...

Two walkers, A and B, stand on a 5 × 5 grid, A at row 1, column 1 and B at row 3, column 3.
They take turns, A first: every token is one move (``up``, ``down``, ``left``, ``right``) of the
walker whose turn it is. A walker never steps off the grid, and picks uniformly among the moves
that keep it on. So the best prediction of the next token is "uniform over the moves that are
legal *for the walker about to move* from *where it now stands*": a model that predicts well must
work out that walker's cell from every earlier move of it, skipping the other walker's.

The state has two natural frames, as the Othello board does (Nanda et al. 2023):

- **by name**: where A is and where B is (``Walks.cells[..., 0]`` and ``[..., 1]``);
- **by turn**: where the walker *to move next* is, and where the one who *just moved* is.

The second is the one the prediction needs, so that is where to look for a linear representation.

Cells are numbered ``row * SIZE + column`` (0 top left, 24 bottom right); ``up`` lowers the row.
All randomness goes through a ``torch.Generator``, so a seed fixes every walk on any machine.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from jaxtyping import Bool, Float, Int
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from torch import Tensor
from transformers import PreTrainedTokenizerBase, PreTrainedTokenizerFast

from interplab.vocab import BOS, UNK, load_tokenizer

SIZE = 5  # the grid is SIZE × SIZE
N_CELLS = SIZE * SIZE
MOVES: tuple[str, ...] = ("up", "down", "left", "right")
#: (row, column) change of each move, in the order of MOVES.
DELTAS = torch.tensor([[-1, 0], [1, 0], [0, -1], [0, 1]])
WALKERS: tuple[str, ...] = ("A", "B")
#: Where each walker starts, as (row, column).
STARTS = torch.tensor([[1, 1], [3, 3]])
VOCAB: tuple[str, ...] = (BOS, UNK, *MOVES)
BOS_ID, UNK_ID, FIRST_MOVE_ID = 0, 1, 2
D_VOCAB = len(VOCAB)
N_MOVES = 32  # moves per walk, 16 per walker
SEQ_LEN = 1 + N_MOVES  # BOS first: the shipped model's n_ctx


@dataclass(frozen=True)
class Walks:
    """Walks as token ids, with the true state after every token.

    ``cells[w, p, k]`` is the cell of walker ``k`` (0 = A, 1 = B) once token ``p`` has been read
    (at BOS, p = 0, both stand at their starts); ``tokens[w, p + 1]`` is then a move of walker
    ``p % 2``: A moves at odd positions, B at even ones.
    """

    tokens: Int[Tensor, "walk pos"]
    cells: Int[Tensor, "walk pos walker"]

    def texts(self) -> list[str]:
        """Each walk as text, without BOS (the tokenizer adds it back)."""
        return [" ".join(VOCAB[i] for i in walk[1:]) for walk in self.tokens.tolist()]

    def next_walker(self) -> Int[Tensor, " pos"]:
        """Which walker moves after each position: 0 (A) at even positions, 1 (B) at odd ones."""
        return torch.arange(self.tokens.shape[1]) % 2


def row_col(cells: Int[Tensor, "*shape"]) -> Int[Tensor, "*shape 2"]:
    """Cell numbers to (row, column)."""
    return torch.stack([cells // SIZE, cells % SIZE], dim=-1)


def legal_moves(cells: Int[Tensor, "*shape"]) -> Bool[Tensor, "*shape 4"]:
    """Which of MOVES keep a walker on the grid from each cell."""
    target = row_col(cells)[..., None, :] + DELTAS
    return ((target >= 0) & (target < SIZE)).all(-1)


def move_distribution(cells: Int[Tensor, "*shape"]) -> Float[Tensor, "*shape 4"]:
    """The true next-move distribution of a walker at each cell: uniform over its legal moves."""
    legal = legal_moves(cells).float()
    return legal / legal.sum(-1, keepdim=True)


def generate(n_walks: int, seed: int | torch.Generator, n_moves: int = N_MOVES) -> Walks:
    """``n_walks`` random walks of ``n_moves`` moves each, deterministic in ``seed``."""
    if n_walks < 1 or n_moves < 1:
        raise ValueError(f"need n_walks >= 1 and n_moves >= 1; got {n_walks}, {n_moves}")
    generator = seed if isinstance(seed, torch.Generator) else torch.Generator().manual_seed(seed)
    here = STARTS.expand(n_walks, 2, 2).clone()  # [walk, walker, (row, col)]
    tokens = [torch.full((n_walks,), BOS_ID)]
    cells = [here[..., 0] * SIZE + here[..., 1]]
    for step in range(n_moves):
        walker = step % 2
        move = torch.multinomial(move_distribution(cells[-1][:, walker]), 1, generator=generator)[:, 0]
        here[:, walker] += DELTAS[move]
        tokens.append(move + FIRST_MOVE_ID)
        cells.append(here[..., 0] * SIZE + here[..., 1])
    return Walks(torch.stack(tokens, 1), torch.stack(cells, 1))


def build_tokenizer() -> PreTrainedTokenizerFast:
    """The tokenizer as built in memory. Don't hand this one to a model: use ``make_tokenizer``."""
    tok = Tokenizer(models.WordLevel({word: i for i, word in enumerate(VOCAB)}, unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.WordPiece(prefix="##")  # joins words with single spaces
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=BOS, eos_token=BOS, pad_token=BOS, unk_token=UNK, model_max_length=1024,
    )


def make_tokenizer() -> PreTrainedTokenizerBase:
    """A fresh tokenizer ready for ``TransformerBridge.boot_native(..., tokenizer=)``."""
    with tempfile.TemporaryDirectory() as tmp:
        build_tokenizer().save_pretrained(Path(tmp))
        return load_tokenizer(tmp)
