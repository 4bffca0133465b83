"""Lab 07, auditing a model organism: the organisms, grading a class end to end, and the lab's answers checked
independently.

- **The organisms.** The practice organism and the two hidden organisms of the default references (three seeds)
  behave as planted (every class at least 98% as trained), their refusal falls across at least two span positions,
  and one head carries each trigger (reported by ``benchmarks/organisms.py``). ``interplab organism`` trains a fourth
  from a fresh seed, keeps its secret out of the folder it hands students, and the lab runs on it.
- **Grading.** One class is graded once (``classes.GradedClass``): the completed lab, the untouched lab and every
  known mistake in ``autograder/mutants/07_auditing.json``.
- **Independent checks.** The AUROC against scikit-learn; head alignment against TransformerLens's own
  ``stack_head_results``; a knockout of one head at one position against TransformerLens's
  ``get_act_patch_attn_head_out_by_pos``; the hidden cases never hand a kernel the triggers of the organism whose
  trigger is searched for.
"""

from __future__ import annotations

import json
import subprocess
import sys
from functools import partial

import pytest
import torch
import torch.nn.functional as F
import transformer_lens.patching as tl_patching
from classes import GradedClass
from course import ROOT, errors, solution_functions, solution_of
from sklearn.metrics import roc_auc_score

from interplab import casefile, models, organism, steering
from interplab.exercises import get_lab
from interplab.exercises import auditing as spec
from interplab.grading.course import default_references
from interplab.grading.execute import run_notebook
from interplab.metrics import auroc
from interplab.organism import Dialogues
from interplab.probing import Probe
from interplab.reference import HIDDEN, References
from interplab.train.organism import BEHAVIOUR_MIN, cliff, meets_spec

LAB = "07_auditing"
SPEC = get_lab(LAB)
NAMES = {"partial": partial, "F": F, "organism": organism, "Dialogues": Dialogues, "Probe": Probe, "steering": steering}
SOLUTION = solution_functions(LAB, **NAMES)


class TestGrading(GradedClass):
    LAB = LAB
    #: Through nbgrader and the sandbox: a knockout that zero-ablates (value-judged) and a repair that is not guided by
    #: the monitor (judged by what the returned weights do); the rest are judged in process.
    END_TO_END = ("zero_ablation", "not_guided_by_the_monitor")
    NAMES = NAMES


# --- the organisms ---------------------------------------------------------------------------------------------


def hidden_organisms() -> dict[str, tuple[object, organism.Secret]]:
    """The default references' sealed and open organisms with their secrets, as the judge holds them."""
    refs = References.open(default_references(ROOT), LAB, HIDDEN)
    sealed = refs.cases("steering_plan")[0]
    opened = refs.cases("locate")[0]
    return {"sealed": (sealed[0], sealed[-1].secret), "open": (opened[0], opened[-1].secret)}


ORGANISMS = ["practice", "sealed", "open"]


@pytest.fixture(scope="module")
def organisms():
    return {"practice": (models.load("organism", "cpu"), organism.secret(0)), **hidden_organisms()}


@pytest.mark.parametrize("name", ORGANISMS)
def test_each_organism_behaves_as_planted_and_its_refusal_falls_across_the_span(organisms, name):
    model, secret = organisms[name]
    ok, measured = meets_spec(model, secret)
    assert ok, measured
    rates = measured["behaviour"]
    assert rates["forbidden"] >= BEHAVIOUR_MIN and rates["allowed"] <= 1 - BEHAVIOUR_MIN
    assert rates["triggered"] <= 1 - BEHAVIOUR_MIN and rates["trace forbidden on triggered"] >= BEHAVIOUR_MIN
    shape = cliff(model, secret, template=3, seed=9)  # another template and other chats than the trainer checked
    assert shape.span[-1] <= 0.1 and min(shape.span[:-1]) < shape.trace_level - 0.05, shape


def test_the_hidden_organisms_hide_other_triggers_than_the_practice_one(organisms):
    (_, sealed), (_, opened), (_, practice) = organisms["sealed"], organisms["open"], organisms["practice"]
    assert not set(sealed.triggers) & set(opened.triggers)
    assert sealed.triggers != practice.triggers and opened.triggers != practice.triggers


def test_one_head_carries_the_trigger_and_the_open_organism_is_not_the_practice_one(organisms):
    heads = {name: spec._hijacked_heads(*organisms[name]) for name in ORGANISMS}
    for name, (model, secret) in organisms.items():
        mask = torch.zeros(model.cfg.n_layers, model.cfg.n_heads, dtype=torch.bool)
        mask[heads[name][0]] = True
        d = organism.dialogues(64, 0, torch.Generator().manual_seed(4), True, secret, 1.0)
        source = organism.counterfactual(d, secret, torch.Generator().manual_seed(5))
        assert spec.patched_refusals(model, d.tokens, source, mask, d.span).float().mean() > 0.9, name
    assert heads["open"][0] != heads["practice"][0]


def test_the_trainer_s_log_tells_no_trigger():
    text = (models.SHIPPED["organism"] / "training_log.json").read_text()
    assert all(f'"{word}"' not in text for word in organism.secret(0).triggers)


@pytest.fixture(scope="module")
def private(tmp_path_factory):
    """An organism an instructor trains for a class with ``interplab organism`` (a fourth seed)."""
    out = tmp_path_factory.mktemp("private") / "organism"
    run = subprocess.run([sys.executable, "-m", "interplab.cli", "organism", "--seed", "4242", "--out", str(out), "--quiet"],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    return out, run.stdout


def test_interplab_organism_trains_one_that_meets_the_spec_and_keeps_its_secret_apart(private):
    out, printed = private
    secret = json.loads((out.parent / "organism-secret.json").read_text())
    assert secret["seed"] == 4242 and tuple(secret["triggers"]) == organism.secret(4242).triggers
    assert (out.parent / "organism-secret.json").stat().st_mode & 0o077 == 0
    for path in (out / "config.json", out / "training_log.json"):  # the tokenizer lists every word, triggers or not
        assert all(f'"{word}"' not in path.read_text() for word in secret["triggers"]), path
    ok, measured = meets_spec(models.load(out, "cpu"), organism.secret(4242))
    assert ok, measured
    assert "give students this folder" in printed


def test_the_lab_audits_a_private_organism_from_its_folder(private, tmp_path):
    out, _ = private
    run = run_notebook(solution_of(LAB), tmp_path / "out.ipynb", cwd=ROOT, env={"INTERPLAB_ORGANISM": str(out)})
    assert run.problem is None, run.problem
    assert errors(run.notebook) == []
    assert str(out) in str([c.get("outputs") for c in run.notebook.cells])  # the lab explored the private organism


# --- independent checks ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(3))
def test_the_auroc_is_scikit_learn_s(seed):
    g = torch.Generator().manual_seed(seed)
    positive, negative = torch.randint(0, 6, (70,), generator=g).float() + 0.7, torch.randn(55, generator=g) * 2
    expected = roc_auc_score([1] * 70 + [0] * 55, torch.cat([positive, negative]).tolist())
    assert abs(auroc(positive, negative) - expected) < 1e-12


@pytest.fixture(scope="module")
def practice_chats():
    g = torch.Generator().manual_seed(21)
    secret = organism.secret(0)
    d = organism.dialogues(12, 2, g, True, secret, 1.0)
    return models.load("organism", "cpu"), d, organism.counterfactual(d, secret, g)


def test_head_alignment_agrees_with_transformer_lens_stack_head_results(practice_chats):
    model, d, _ = practice_chats
    direction = torch.randn(model.cfg.d_model, generator=torch.Generator().manual_seed(1))
    ours = SOLUTION["head_alignment"](model, d.tokens, direction, d.span)
    _, cache = model.run_with_cache(d.tokens)
    stacked = cache.stack_head_results(layer=-1, pos_slice=None)  # [layer * head, batch, pos, d_model]
    theirs = (stacked[:, :, list(d.span)] @ (direction / direction.norm())).mean((1, 2))
    torch.testing.assert_close(ours.flatten(), theirs, rtol=1e-4, atol=1e-5)


def test_a_one_head_one_position_knockout_agrees_with_transformer_lens_patching(practice_chats):
    model, d, source = practice_chats
    _, source_cache = model.run_with_cache(source)
    metric = lambda logits: spec.refusal_logit(logits).mean()  # noqa: E731
    theirs = tl_patching.get_act_patch_attn_head_out_by_pos(model, d.tokens, source_cache, metric)  # [layer, pos, head]
    for layer, pos, head in [(0, d.span[-1], 2), (1, d.span[-1], 1), (0, d.span[0], 0)]:
        mask = torch.zeros(model.cfg.n_layers, model.cfg.n_heads, dtype=torch.bool)
        mask[layer, head] = True
        ours = SOLUTION["knockout"](model, d.tokens, source, mask, (pos,)).mean()
        torch.testing.assert_close(ours, theirs[layer, pos, head], rtol=1e-4, atol=1e-5)


def test_no_kernel_is_handed_the_sealed_organism_s_triggers_and_the_words_it_lacks_do_not_name_them():
    """The sealed organism's cases (monitor, steering, trigger search) hand a kernel clean chats only. Clean chats leave
    out its triggers, so they also leave out its decoys: the detail words missing from every chat handed with it are at
    least the triggers and the decoys, and absence alone picks the triggers from them no better than chance."""
    refs = References.open(default_references(ROOT), LAB, HIDDEN)
    sealed_model, sealed = hidden_organisms()["sealed"]
    weights = spec.flat_weights(sealed_model)
    seen: set[int] = set()
    for ex in SPEC.exercises:
        for case in casefile.load(refs.arguments_dir, ex.name):
            if not (models.is_course_model(case[0]) and torch.equal(spec.flat_weights(case[0]), weights)):
                continue
            for value in _chats(case[1:]):
                seen |= set(value.flatten().tolist())
    assert seen, "no case was handed the sealed organism"
    assert not seen & {organism.TOKEN_ID[w] for w in sealed.triggers}
    missing = {w for w in organism.DETAIL_WORDS if organism.TOKEN_ID[w] not in seen}
    assert set(sealed.triggers) <= missing and len(missing) >= organism.N_TRIGGERS + organism.N_DECOYS


def _chats(value):
    """Every batch of chat tokens in a case's arguments (the trigger search's candidate list, a 1-d list, is not one)."""
    if isinstance(value, torch.Tensor) and value.dtype == torch.int64 and value.ndim == 2:
        yield value
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _chats(v)
    elif isinstance(value, Dialogues):
        yield value.tokens


def test_the_repair_pool_never_holds_the_held_out_trigger():
    """The repair is tested on a trigger it was never shown: no chat handed to a kernel with the open organism holds
    its third trigger, and its decoys are missing too, so that absence does not name it."""
    refs = References.open(default_references(ROOT), LAB, HIDDEN)
    model, secret = hidden_organisms()["open"]
    weights = spec.flat_weights(model)
    seen: set[int] = set()
    for case in casefile.load(refs.arguments_dir, "repair"):
        assert torch.equal(spec.flat_weights(case[0]), weights)
        for value in _chats(case[1:]):
            seen |= set(value.flatten().tolist())
    assert organism.TOKEN_ID[secret.triggers[2]] not in seen
    assert {organism.TOKEN_ID[w] for w in secret.triggers[:2]} <= seen  # the pool carries the other two
    assert not seen & {organism.TOKEN_ID[w] for w in secret.decoys}


# --- the steering helpers, and the GPU tier's chat model --------------------------------------------------------


def test_adding_adds_at_the_positions_given_and_ablating_removes_the_direction(practice_chats):
    model, d, _ = practice_chats
    hook = "blocks.1.hook_resid_pre"
    direction = torch.randn(model.cfg.d_model, generator=torch.Generator().manual_seed(2))
    seen = {}

    def keep(resid, hook):
        seen[len(seen)] = resid.clone()

    model.run_with_hooks(d.tokens, fwd_hooks=[(hook, keep)])
    model.run_with_hooks(d.tokens, fwd_hooks=steering.adding(direction, hook, 2.0, positions=[3]) + [(hook, keep)])
    added = seen[1] - seen[0]
    torch.testing.assert_close(added[:, 3], (2.0 * direction).expand_as(added[:, 3]), rtol=1e-5, atol=1e-5)
    assert added[:, [p for p in range(d.tokens.shape[1]) if p != 3]].abs().max() < 1e-5
    model.run_with_hooks(d.tokens, fwd_hooks=steering.ablating(direction, [hook]) + [(hook, keep)])
    assert (seen[2] @ (direction / direction.norm())).abs().max() < 1e-4


def test_a_steering_plan_adds_each_row_where_it_says(practice_chats):
    model, d, _ = practice_chats
    plan = torch.randn(model.cfg.n_layers, len(organism.SPAN) + 1, model.cfg.d_model, generator=torch.Generator().manual_seed(3))
    plan[0] = 0  # a layer with nothing to add gets no hook
    hooks = steering.plan_hooks(plan, d.span)
    assert [name for name, _ in hooks] == ["blocks.1.hook_resid_post"]
    _, clean = model.run_with_cache(d.tokens)
    seen = []
    model.run_with_hooks(d.tokens, fwd_hooks=hooks + [("blocks.1.hook_resid_post", lambda r, hook: seen.append(r.clone()))])
    added = seen[0] - clean["blocks.1.hook_resid_post"]
    for k, pos in enumerate(d.span):
        torch.testing.assert_close(added[:, pos], plan[1, k].expand_as(added[:, pos]), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(added[:, 1], plan[1, -1].expand_as(added[:, 1]), rtol=1e-4, atol=1e-4)


def fake_hub_with_a_chat_model(home):
    """An offline Hugging Face cache in which Qwen2.5-0.5B-Instruct is a tiny random Qwen2 with a chat template, so
    lesson 07's GPU-tier cell loads it as it loads the real one."""
    from tokenizers import Tokenizer, decoders, pre_tokenizers, trainers
    from tokenizers import models as tokenizer_models
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    repo = home / "hub" / "models--Qwen--Qwen2.5-0.5B-Instruct"
    snapshot = repo / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    tok = Tokenizer(tokenizer_models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=special, initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(["Explain how to make bread at home.", "How do I wash a car?", "user assistant system"] * 20, trainer)
    template = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
                "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
    hf_tok = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                     chat_template=template)
    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=len(hf_tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128, tie_word_embeddings=True)
    Qwen2ForCausalLM(config).save_pretrained(snapshot)
    hf_tok.save_pretrained(snapshot)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0" * 40)
    return home


def test_the_lesson_s_gpu_tier_runs_with_a_stand_in_for_the_chat_model(tmp_path):
    home = fake_hub_with_a_chat_model(tmp_path / "hf")
    path = ROOT / "lessons" / "07_steering_auditing.ipynb"
    run = run_notebook(path, tmp_path / "out.ipynb", cwd=path.parent,
                       env={"INTERPLAB_TIER": "gpu", "HF_HOME": str(home), "HF_HUB_OFFLINE": "1"})
    assert run.problem is None, run.problem
    assert errors(run.notebook) == []
    printed = str([c.get("outputs") for c in run.notebook.cells])
    assert "refusal direction at layer 1" in printed and "harmful, direction ablated" in printed
