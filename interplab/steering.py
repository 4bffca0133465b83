"""Directions in the residual stream, and what adding or removing one does, for any model of the course.

Lesson 07 uses these on the model organism and, on the GPU tier, on a real chat model (after Arditi et al.
2024, who found refusal in chat models mediated by one direction: the difference of means between the
residual streams of harmful and harmless instructions at the last token). The same functions serve both:
prompts are token tensors one at a time (chat prompts differ in length, and padding would move the last
token), hooks are TransformerLens hooks, and nothing but `plan_hooks` (the lab's steering plans) depends on the
organism's format.
"""

from __future__ import annotations

import torch
from jaxtyping import Float, Int
from torch import Tensor


def chat_prompts(model, instructions: list[str]) -> list[Int[Tensor, "1 pos"]]:
    """Each instruction as a user turn in the model's own chat template, ready for the assistant's reply."""
    prompts = []
    for text in instructions:
        encoded = model.tokenizer.apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True,
                                                      return_tensors="pt")
        ids = encoded["input_ids"] if not isinstance(encoded, Tensor) else encoded
        prompts.append(ids.to(model.cfg.device))
    return prompts


@torch.no_grad()
def last_position(model, prompts: list[Int[Tensor, "1 pos"]] | Int[Tensor, "batch pos"], hook: str) -> Float[Tensor, "n d_model"]:
    """The activation at ``hook`` at each prompt's last token (a batch of equal-length prompts, or a list of them)."""
    batches = [prompts] if isinstance(prompts, Tensor) else prompts
    rows = []
    for tokens in batches:
        _, cache = model.run_with_cache(tokens, names_filter=lambda name: name == hook)
        rows.append(cache[hook][:, -1].float().cpu())
    return torch.cat(rows)


def difference_of_means(positive: Float[Tensor, "n d"], negative: Float[Tensor, "m d"]) -> Float[Tensor, " d"]:
    """The mean of ``positive`` minus the mean of ``negative``: the mass-mean direction (Marks & Tegmark 2023)."""
    return positive.mean(0) - negative.mean(0)


def adding(direction: Float[Tensor, " d"], hook: str, scale: float = 1.0, positions: list[int] | None = None) -> list:
    """Hooks that add ``scale * direction`` at ``hook``, at ``positions`` (default: every position)."""
    def add(resid, hook):
        resid = resid.clone()
        vector = (scale * direction).to(resid.device, resid.dtype)
        if positions is None:
            resid += vector
        else:
            resid[:, positions] += vector
        return resid

    return [(hook, add)]


def ablating(direction: Float[Tensor, " d"], hooks: list[str]) -> list:
    """Hooks that remove the component along ``direction`` at every position of each hook: Arditi et al.'s
    directional ablation, done on every layer's residual stream so that no layer can write the direction back."""
    unit = direction / direction.norm()

    def project_out(resid, hook):
        u = unit.to(resid.device, resid.dtype)
        return resid - (resid @ u)[..., None] * u

    return [(name, project_out) for name in hooks]


def plan_hooks(plan: Float[Tensor, "layer slot d_model"], span: tuple[int, ...] | None) -> list:
    """Hooks that add a steering plan to the organism's residual stream: ``plan[layer]`` to the output of that
    layer (``blocks.{layer}.hook_resid_post``), its row ``k < len(span)`` at the span's k-th position and its last
    row at every other position (at every position of text with no span: ``span=None``)."""
    hooks = []
    for layer in range(plan.shape[0]):
        if not bool(plan[layer].abs().sum()):
            continue

        def add(resid, hook, rows=plan[layer]):
            resid = resid.clone()
            resid += rows[-1].to(resid.device, resid.dtype)
            if span is not None:
                for k, pos in enumerate(span):
                    resid[:, pos] += (rows[k] - rows[-1]).to(resid.device, resid.dtype)
            return resid

        hooks.append((f"blocks.{layer}.hook_resid_post", add))
    return hooks


@torch.no_grad()
def greedy(model, tokens: Int[Tensor, "batch pos"], n_new: int, hooks: list = ()) -> Int[Tensor, "batch pos_plus_new"]:
    """``tokens`` continued by ``n_new`` greedy tokens, with ``hooks`` on every forward pass."""
    for _ in range(n_new):
        logits = model.run_with_hooks(tokens, fwd_hooks=list(hooks))
        tokens = torch.cat([tokens, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    return tokens
