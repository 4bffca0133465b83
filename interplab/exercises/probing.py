"""Lab 05, probing: the inputs each exercise is graded on, and how trained probes and edits are judged.

Most exercises are deterministic (a probe's logits, its accuracy, the control task, the state by turn,
the residual stream, the model's next-move probabilities with a patch, the success rate, accuracy by
position) and are compared with the reference on hidden inputs: other documents and walks, other
layers, probes with random weights, and randomly initialised twins of the shipped models.

Two are random or open by design, and are judged by what the answer *does*, measured here by the
grader on data the student's function never sees:

- ``train_probe``: the trained probe's accuracy on held-out examples, against the reference probe's
  on the same examples (part of speech on the tiny LM, a control task learnt by an MLP probe, the
  walkers' cells in the world model);
- ``edit_cell``: the edited residual stream is patched into the world model by the grader, which
  measures how often the model's next-move predictions follow the *edited* cell rather than the
  true one, against the reference edit and against random edits of the same size. The edit must
  also stay within the probe's directions.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
from jaxtyping import Float, Int
from torch import Tensor

from interplab import corpus, models, world
from interplab.exercises import Exercise, Inputs, LabSpec, returned
from interplab.probing import POS, Probe, pos_of, word_activations

#: The residual stream the part-of-speech probes read: before block 0, after block 0, after block 1.
LM_HOOKS = ("blocks.0.hook_resid_pre", "blocks.0.hook_resid_post", "blocks.1.hook_resid_post")


@functools.cache
def _tiny_lm():
    """The shipped tiny LM, loaded once per process (the grader judges many submissions)."""
    return models.load("tiny-lm", "cpu")


@functools.cache
def _grid_world():
    """The shipped world model, loaded once per process."""
    return models.load("grid-world", "cpu")


def _seed(inputs: Inputs, tag: str) -> int:
    """A seed for a data generator, drawn from the exercise's seed."""
    return int(inputs.randint(2**31 - 1, (1,), tag=tag))


def by_turn(cells: Int[Tensor, "walk pos 2"]) -> Int[Tensor, "walk pos 2"]:
    """The grader's own state by turn: (walker to move next, walker who just moved) at every position."""
    order = torch.stack([torch.arange(cells.shape[1]) % 2, 1 - torch.arange(cells.shape[1]) % 2], dim=-1)
    return cells.gather(2, order.expand(cells.shape[0], -1, -1))


@torch.no_grad()
def resid(model, tokens: Int[Tensor, "batch pos"], hook: str) -> Float[Tensor, "batch pos d"]:
    """The activation at one hook."""
    _, cache = model.run_with_cache(tokens, names_filter=lambda name: name == hook)
    return cache[hook]


# --- inputs -----------------------------------------------------------------------------------


def _random_probe(inputs: Inputs, d_in: int, n_classes: int, d_hidden: int | None, tag: str) -> Probe:
    """Weights of no particular shape: plain tensors, biases non-zero."""
    rows = d_in if d_hidden is None else d_hidden
    weights = [inputs.randn(rows, n_classes, tag=f"{tag}/W"), inputs.randn(n_classes, tag=f"{tag}/b") * 0.5]
    if d_hidden is not None:
        weights += [inputs.randn(d_in, d_hidden, tag=f"{tag}/W_in"), inputs.randn(d_hidden, tag=f"{tag}/b_in") * 0.5]
    return Probe(*weights)


def logits_cases(inputs: Inputs) -> list[tuple]:
    """(probe, x): linear and MLP probes; once square, so a transposed weight has the right shape."""
    return [
        (_random_probe(inputs, 6, 4, None, "a"), inputs.randn(10, 6, tag="xa")),
        (_random_probe(inputs, 5, 3, 8, "b"), inputs.randn(7, 5, tag="xb")),
        (_random_probe(inputs, 4, 4, 4, "c"), inputs.randn(4, 4, tag="xc") * 2),
    ]


#: Numbers of labelled examples, drawn by the seed: distinct primes, so that an accuracy (k / n) of one
#: case can equal another's only at 0 or 1, and no public accuracy answers a hidden case.
LABELLED = ((23, 29, 31), (37, 41, 43), (47, 53, 59), (61, 67, 71))


def _mostly_right_labels(inputs: Inputs, guess: Tensor, n_classes: int, tag: str) -> Tensor:
    """The probe's own guesses, a random 35% of them replaced by random classes (accuracy about 0.7)."""
    wrong = torch.rand(guess.shape, generator=inputs.generator(f"wrong{tag}")) < 0.35
    return torch.where(wrong, inputs.randint(n_classes, tuple(guess.shape), tag=f"y{tag}"), guess)


def accuracy_cases(inputs: Inputs) -> list[tuple]:
    """(probe, x, y): a probe that is often right (so accuracy is far from chance); in two cases some
    labels are -1, in random places, on top of the labelled examples."""
    cases = []
    sizes = inputs.choose(LABELLED, "sizes")
    for i, (n, d, c, hidden, unlabelled) in enumerate(zip(sizes, (5, 6, 4), (3, 4, 5), (None, 5, None), (0, 13, 25))):
        probe = _random_probe(inputs, d, c, hidden, f"p{i}")
        x = inputs.randn(n + unlabelled, d, tag=f"x{i}")
        with torch.no_grad():
            guess = _logits(probe, x).argmax(-1)
        y = _mostly_right_labels(inputs, guess, c, str(i))
        y[torch.randperm(n + unlabelled, generator=inputs.generator(f"missing{i}"))[:unlabelled]] = -1
        cases.append((probe, x, y))
    return cases


def control_cases(inputs: Inputs) -> list[tuple]:
    """(tokens, y, n_classes, d_vocab, generator): corpus words with part of speech, and random data with gaps."""
    docs = corpus.generate(6, seed=_seed(inputs, "corpus"))
    tokens, y = docs.tokens[:, 1:], pos_of(docs.labels[:, 1:])
    random_tokens = inputs.randint(30, (5, 12), tag="tokens")
    weights = torch.tensor([0.6, 0.3, 0.1])
    random_y = torch.multinomial(weights, 60, replacement=True, generator=inputs.generator("y")).reshape(5, 12)
    random_y[torch.rand(5, 12, generator=inputs.generator("missing")) < 0.2] = -1
    return [
        (tokens, y, len(POS), corpus.D_VOCAB, inputs.generator("control/a")),
        (random_tokens, random_y, 3, 30, inputs.generator("control/b")),
    ]


@dataclass(frozen=True)
class HeldOut:
    """Examples the judge measures a trained probe on; never passed to the student's function."""

    x: Float[Tensor, "n d"]
    y: Int[Tensor, " n"]


#: Part of speech on the tiny LM: documents to train on and to test on; grid walks likewise.
POS_DOCS, POS_TEST_DOCS, WALKS, TEST_WALKS = 30, 20, 40, 30
#: Every training case: full-batch Adam for this many steps at this learning rate; the MLP's width.
STEPS, LR, D_HIDDEN = 150, 0.02, 32
#: A trained probe passes when its held-out accuracy is at most this far below the reference's.
ACCURACY_MARGIN = 0.03


# Building inputs runs the models, which is slow beside the exercises themselves; a grader (and the tests)
# build the same inputs many times. So the pure, expensive parts are cached by their seeds, and every case
# gets copies: a student's function that changes its inputs in place changes nothing for the next call.


#: What the tiny LM's probes are trained to read: four classes each (a document's topic needs context).
LM_TASKS = ("part of speech", "topic")


def topic_of(labels: Tensor) -> Int[Tensor, "..."]:
    """Each token's document topic (index into ``corpus.TOPICS``), from the corpus's feature labels."""
    columns = [corpus.FEATURES.index(f"topic_{name}") for name in corpus.TOPICS]
    return labels[..., columns].long().argmax(-1)


@functools.lru_cache(maxsize=16)
def _lm_data(seed: int, n_docs: int, hook: str, task: str) -> tuple[Float[Tensor, "n d"], Int[Tensor, " n"], Int[Tensor, " n"]]:
    """The tiny LM's activations at ``hook``, each word's class in ``task`` and its token, BOS left out, flattened."""
    docs = corpus.generate(n_docs, seed=seed)
    acts = word_activations(_tiny_lm(), docs, [hook])[0, :, 1:]
    labels = pos_of(docs.labels[:, 1:]) if task == "part of speech" else topic_of(docs.labels[:, 1:])
    return acts.flatten(0, 1), labels.flatten(), docs.tokens[:, 1:].flatten()


@functools.lru_cache(maxsize=16)
def _walk_data(seed: int, n_walks: int, hook: str, walker: int = 0) -> tuple[Float[Tensor, "n d"], Int[Tensor, " n"]]:
    """The world model's activations at ``hook`` and the cell of the walker to move next (``walker=0``) or of
    the one who just moved (1), at every position but BOS and the last (which the model never learnt to
    predict from), flattened."""
    walks = world.generate(n_walks, seed)
    acts = resid(_grid_world(), walks.tokens, hook)[:, 1:-1]
    return acts.flatten(0, 1), by_turn(walks.cells)[:, 1:-1, walker].flatten()


@functools.lru_cache(maxsize=8)
def _twin(name: str, seed: int):
    """A randomly initialised twin of a shipped model (built once per seed)."""
    return models.random_init(name, seed, "cpu")


def _copies(*tensors: Tensor) -> tuple[Tensor, ...]:
    return tuple(t.clone() for t in tensors)


def train_cases(inputs: Inputs) -> list[tuple]:
    """(probe, x, y, steps, lr, held-out examples for the judge).

    A hidden case probes another task (part of speech or topic) at another layer, and the world model for
    the other walker: a probe trained on the public inputs scores near chance there.
    """
    corpus_seed, n_train = _seed(inputs, "corpus"), POS_DOCS * (corpus.SEQ_LEN - 1)
    task, hook = inputs.choose(LM_TASKS, "task"), inputs.choose(LM_HOOKS[1:], "hook")
    x, y, _ = _copies(*_lm_data(corpus_seed, POS_DOCS + POS_TEST_DOCS, hook, task))
    lm_case = (Probe.init(x.shape[1], len(POS), generator=inputs.generator("pos/init")),
               x[:n_train], y[:n_train], STEPS, LR, HeldOut(x[n_train:], y[n_train:]))

    # a control task: every word type gets a random class; an MLP probe on the embeddings memorises it
    emb, _, tokens = _copies(*_lm_data(corpus_seed, POS_DOCS + POS_TEST_DOCS, LM_HOOKS[0], "part of speech"))
    labels = torch.randint(len(POS), (corpus.D_VOCAB,), generator=inputs.generator("control"))[tokens]
    control_case = (Probe.init(emb.shape[1], len(POS), D_HIDDEN, generator=inputs.generator("control/init")),
                    emb[:n_train], labels[:n_train], STEPS, LR, HeldOut(emb[n_train:], labels[n_train:]))

    hook = inputs.choose(("blocks.0.hook_resid_post", "blocks.1.hook_resid_post"), "layer")
    wx, wy = _copies(*_walk_data(_seed(inputs, "walks"), WALKS + TEST_WALKS, hook, inputs.choose((0, 1), "walker")))
    n_walk = WALKS * (world.SEQ_LEN - 2)
    walk_case = (Probe.init(wx.shape[1], world.N_CELLS, generator=inputs.generator("walk/init")),
                 wx[:n_walk], wy[:n_walk], STEPS, LR, HeldOut(wx[n_walk:], wy[n_walk:]))
    return [lm_case, control_case, walk_case]


def turn_cases(inputs: Inputs) -> list[tuple]:
    """(cells,): real walks, and random cells of another length (odd, so parity mistakes show)."""
    walks = world.generate(4, _seed(inputs, "walks"))
    return [(walks.cells,), (inputs.randint(world.N_CELLS, (3, 7, 2), tag="cells"),)]


def stack_cases(inputs: Inputs) -> list[tuple]:
    """(model, tokens): the world model and random twins of both shipped models."""
    walks = world.generate(3, _seed(inputs, "walks"))
    docs = corpus.generate(2, seed=_seed(inputs, "corpus"), seq_len=12)
    return [
        (_grid_world(), walks.tokens[:, : 5 + int(inputs.randint(20, (1,), tag="length"))]),
        (_twin("grid-world", _seed(inputs, "twin")), walks.tokens),
        (_twin("tiny-lm", _seed(inputs, "lm twin")), docs.tokens),
    ]


def _prefix(inputs: Inputs, n: int, tag: str) -> tuple[world.Walks, int]:
    """``n`` walks and a position to cut them after (the edit is made there, the prediction read there)."""
    walks = world.generate(n, _seed(inputs, f"{tag}/walks"))
    return walks, 6 + int(inputs.randint(world.N_MOVES - 8, (1,), tag=f"{tag}/cut"))


def patch_cases(inputs: Inputs) -> list[tuple]:
    """(model, tokens, hook_name, resid): the world model and a random twin, real residuals plus noise."""
    cases = []
    for i, twin in enumerate((False, True)):
        model = _twin("grid-world", _seed(inputs, "twin")) if twin else _grid_world()
        walks, cut = _prefix(inputs, 6, f"p{i}")
        hook = inputs.choose(("blocks.0.hook_resid_post", "blocks.1.hook_resid_post"), f"hook{i}")
        tokens = walks.tokens[:, : cut + 1]
        final = resid(model, tokens, hook)[:, -1]
        cases.append((model, tokens, hook, final + inputs.randn(*final.shape, tag=f"noise{i}") * final.norm(dim=-1).mean()))
    return cases


@dataclass(frozen=True)
class EditHeldOut:
    """What the judge needs to measure an edit: the walks it was made in, where, and the true cells."""

    tokens: Int[Tensor, "n pos"]  # each walk up to the position edited (the last one)
    hook: str
    source: Int[Tensor, " n"]  # the true cell of the walker to move next there


#: Walks to fit the probe and the cell means on, and walks to edit.
FIT_WALKS, EDIT_WALKS = 100, 80


def fit_linear_probe(x: Float[Tensor, "n d"], y: Int[Tensor, " n"], n_classes: int, generator: torch.Generator,
                     steps: int = STEPS, lr: float = LR) -> Probe:
    """The grader's own probe: multinomial logistic regression by full-batch Adam (how the inputs are made)."""
    probe = Probe.init(x.shape[1], n_classes, generator=generator)
    optimizer = torch.optim.Adam(probe.parameters(), lr=lr)
    with torch.enable_grad():
        for _ in range(steps):
            loss = torch.nn.functional.cross_entropy(x @ probe.W + probe.b, y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return Probe(probe.W.detach(), probe.b.detach())


def cell_means(x: Float[Tensor, "n d"], y: Int[Tensor, " n"]) -> Float[Tensor, "cell d"]:
    """The mean activation at each cell (every cell occurs in a few thousand positions)."""
    sums = torch.zeros(world.N_CELLS, x.shape[1]).index_add_(0, y, x)
    return sums / torch.bincount(y, minlength=world.N_CELLS).clamp_min(1)[:, None]


@functools.lru_cache(maxsize=8)
def _cell_probe(seed: int, hook: str) -> tuple[Probe, Float[Tensor, "cell d"]]:
    """A linear probe for the next walker's cell at ``hook``, and the mean activation at each cell."""
    x, y = _walk_data(seed, FIT_WALKS, hook)
    return fit_linear_probe(x, y, world.N_CELLS, torch.Generator().manual_seed(seed)), cell_means(x, y)


def edit_cases(inputs: Inputs) -> list[tuple]:
    """(resid, probe, target, cell_means, what the judge needs): edits after block 0 and after block 1."""
    cases = []
    for i, hook in enumerate(("blocks.0.hook_resid_post", "blocks.1.hook_resid_post")):
        probe, means = _cell_probe(_seed(inputs, f"fit{i}"), hook)
        probe, means = Probe(*_copies(probe.W, probe.b)), means.clone()
        walks, cut = _prefix(inputs, EDIT_WALKS, f"edit{i}")
        source = by_turn(walks.cells)[:, cut, 0]
        target = inputs.randint(world.N_CELLS, (EDIT_WALKS,), tag=f"target{i}")
        keep = (world.legal_moves(source) != world.legal_moves(target)).any(-1)  # an edit the output can show
        tokens = walks.tokens[keep, : cut + 1]
        final = resid(_grid_world(), tokens, hook)[:, -1]
        cases.append((final, probe, target[keep], means, EditHeldOut(tokens, hook, source[keep])))
    return cases


#: Numbers of rows, drawn by the seed: distinct primes, so no public rate (k / n) equals a hidden one.
EDITED_ROWS = ((13, 31), (17, 37), (19, 41), (23, 43))


def success_cases(inputs: Inputs) -> list[tuple]:
    """(probs, source, target): random next-move distributions, some of them near a legal set."""
    cases = []
    for i, n in enumerate(inputs.choose(EDITED_ROWS, "sizes")):
        source = inputs.randint(world.N_CELLS, (n,), tag=f"source{i}")
        target = inputs.randint(world.N_CELLS, (n,), tag=f"target{i}")
        mix = torch.rand(n, 1, generator=inputs.generator(f"mix{i}"))
        noise = torch.rand(n, 4, generator=inputs.generator(f"noise{i}"))
        probs = mix * world.move_distribution(target) + (1 - mix) * noise / noise.sum(-1, keepdim=True)
        cases.append((probs, source, target))
    return cases


def position_cases(inputs: Inputs) -> list[tuple]:
    """(probe, acts, labels): labels -1 in places, and at least one label at every position."""
    cases = []
    for i, (walks, pos, d, c, hidden) in enumerate([(20, 9, 5, 3, None), (15, 6, 4, 4, 6)]):
        probe = _random_probe(inputs, d, c, hidden, f"p{i}")
        acts = inputs.randn(walks, pos, d, tag=f"x{i}")
        with torch.no_grad():
            guess = _logits(probe, acts).argmax(-1)
        wrong = torch.rand(walks, pos, generator=inputs.generator(f"wrong{i}")) < torch.linspace(0, 0.8, pos)
        labels = torch.where(wrong, inputs.randint(c, (walks, pos), tag=f"y{i}"), guess)
        labels[torch.rand(walks, pos, generator=inputs.generator(f"missing{i}")) < 0.3] = -1
        labels[0] = guess[0]  # every position keeps a label
        cases.append((probe, acts, labels))
    return cases


# --- the grader's own measurements ----------------------------------------------------------------


def _logits(probe: Probe, x: Tensor) -> Tensor:
    hidden = torch.relu(x @ probe.W_in + probe.b_in) if probe.is_mlp else x
    return hidden @ probe.W + probe.b


def held_out_accuracy(probe: Probe, held_out: HeldOut) -> float:
    """Accuracy in float64 on the judge's examples (labels -1 left out)."""
    probe64 = Probe(*(w.detach().double() for w in probe.parameters()))
    keep = held_out.y >= 0
    with torch.no_grad():
        guess = _logits(probe64, held_out.x[keep].double()).argmax(-1)
    return float((guess == held_out.y[keep]).double().mean())


def check_train(answer: Tensor, reference: Tensor, args: tuple) -> str | None:
    """A trained probe: its held-out accuracy, measured here, as good as the reference probe's."""
    given, held_out = args[0], args[-1]
    try:
        probe = Probe.from_flat(answer, given.d_in, given.n_classes, given.d_hidden)
    except ValueError as exc:
        return f"{exc}: return the probe you were given, trained in place"
    if not bool(torch.isfinite(answer).all()):
        return "the trained weights contain NaN or infinity: did the training diverge?"
    # (``given`` may be the very probe that was trained in place, so an untrained probe is caught by its accuracy.)
    got = held_out_accuracy(probe, held_out)
    want = held_out_accuracy(Probe.from_flat(reference, given.d_in, given.n_classes, given.d_hidden), held_out)
    if got < want - ACCURACY_MARGIN:
        kind = "MLP probe" if given.is_mlp else "linear probe"
        return (f"your {kind} classifies {got:.1%} of held-out examples correctly, the reference's {want:.1%}: minimise "
                "the cross-entropy of probe_logits (not of probabilities), with Adam at the given lr over every "
                "parameter, for all the steps, zeroing the gradients each step")
    return None


probe_weights = returned(Probe, "probe")


@torch.no_grad()
def next_move_probs(tokens: Int[Tensor, "n pos"], hook: str, final: Float[Tensor, "n d"]) -> Float[Tensor, "n 4"]:
    """The world model's next-move probabilities with the last position's residual at ``hook`` replaced."""
    def patch(activation: Tensor, hook) -> Tensor:
        activation = activation.clone()
        activation[:, -1] = final.to(activation.dtype)
        return activation

    logits = _grid_world().run_with_hooks(tokens, fwd_hooks=[(hook, patch)])
    return logits[:, -1].softmax(-1)[:, world.FIRST_MOVE_ID:]


def follows_target(probs: Float[Tensor, "n 4"], source: Int[Tensor, " n"], target: Int[Tensor, " n"]) -> Tensor:
    """Whether each prediction is closer (total variation) to the target cell's true distribution than the source's."""
    def distance(cells: Tensor) -> Tensor:
        return 0.5 * (probs.double() - world.move_distribution(cells).double()).abs().sum(-1)

    return distance(target) < distance(source)


def _span_basis(W: Tensor) -> Tensor:
    """An orthonormal basis (float64 columns) of the span of the probe's weight columns."""
    U, S, _ = torch.linalg.svd(W.double(), full_matrices=False)
    return U[:, S > S.max() * 1e-6]


#: Edits: at most this share of an edit may lie outside the probe's directions (round-off only);
#: the probe must read the target in this share of walks; the model must follow the edit in at most
#: this much fewer walks than with the reference's edit, and in this much more than with random edits.
OUTSIDE_TOL, DECODED_MIN, SUCCESS_MARGIN, CONTROL_MARGIN = 1e-3, 0.9, 0.1, 0.3


@dataclass(frozen=True)
class EditMeasures:
    decoded: float  # the probe reads the target cell
    success: float  # the model's prediction follows the target cell
    control: float  # ... after a random edit of the same size instead


def measure_edit(edited: Tensor, args: tuple) -> EditMeasures:
    """The judge's measurements of an edited residual stream (float64 where it matters)."""
    final, probe, target, _, held = args
    delta = edited.double() - final.double()
    with torch.no_grad():
        decoded = float((_logits(Probe(probe.W.double(), probe.b.double()), edited.double()).argmax(-1) == target).double().mean())
    success = follows_target(next_move_probs(held.tokens, held.hook, edited), held.source, target)
    random = torch.randn(delta.shape, generator=torch.Generator().manual_seed(len(target)), dtype=torch.float64)
    random = random / random.norm(dim=-1, keepdim=True) * delta.norm(dim=-1, keepdim=True)
    control = follows_target(next_move_probs(held.tokens, held.hook, final.double() + random), held.source, target)
    return EditMeasures(decoded, float(success.double().mean()), float(control.double().mean()))


def check_edit(answer: Tensor, reference: Tensor, args: tuple) -> str | None:
    """An edit along the probe's directions after which the model predicts as if the walker stood at the target."""
    final, probe = args[0], args[1]
    if tuple(answer.shape) != tuple(final.shape):
        return f"expected the edited residual stream, shape {tuple(final.shape)}, got {tuple(answer.shape)}"
    if not bool(torch.isfinite(answer).all()):
        return "your edited residual stream contains NaN or infinity"
    delta = answer.double() - final.double()
    if float(delta.norm()) == 0:
        return "you returned the residual stream unchanged"
    basis = _span_basis(probe.W)
    outside = float((delta - delta @ basis @ basis.T).norm() / delta.norm())
    if outside > OUTSIDE_TOL:
        return ("part of your edit lies outside the probe's directions (the span of the columns of probe.W): "
                "project the change onto them before adding it")
    got, want = measure_edit(answer, args), measure_edit(reference, args)
    if got.decoded < DECODED_MIN:
        return (f"after your edit the probe reads the target cell in only {got.decoded:.0%} of walks: move the residual "
                "stream's coordinates along the probe's directions to those of the target cell's mean")
    if got.success < want.success - SUCCESS_MARGIN or got.success < got.control + CONTROL_MARGIN:
        return (f"the model's next-move predictions follow your edit in {got.success:.0%} of walks, against "
                f"{want.success:.0%} for the reference's edit and {got.control:.0%} for random edits of the same size")
    return None


LAB = LabSpec(
    name="05_probing",
    exercises=(
        Exercise("probe_logits", logits_cases, rtol=1e-4, atol=1e-5),
        Exercise("train_probe", train_cases, properties=check_train, output=probe_weights, judge_only=1,
                 uses=("probe_logits",)),
        Exercise("probe_accuracy", accuracy_cases, rtol=1e-5, atol=1e-6, uses=("probe_logits",)),
        Exercise("control_task", control_cases, rtol=0, atol=0),
        Exercise("by_turn", turn_cases, rtol=0, atol=0),
        Exercise("residual_stack", stack_cases, rtol=1e-4, atol=1e-5),
        Exercise("move_probabilities", patch_cases, rtol=1e-4, atol=1e-6),
        Exercise("edit_cell", edit_cases, properties=check_edit, judge_only=1),
        Exercise("success_rate", success_cases, rtol=1e-6, atol=1e-7),
        Exercise("accuracy_by_position", position_cases, rtol=1e-5, atol=1e-6, uses=("probe_logits",)),
    ),
)
