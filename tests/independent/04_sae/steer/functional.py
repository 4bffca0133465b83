def steer(model, tokens: Int[Tensor, "batch pos"], hook_name: str, direction: Float[Tensor, "d_model"], coeff: float):
    import torch.nn.functional as F

    shift = coeff * direction
    with torch.no_grad():
        logits = model.run_with_hooks(
            tokens,
            return_type="logits",
            fwd_hooks=[(hook_name, lambda act, hook: torch.cat([act[:, :1], act[:, 1:] + shift], 1))],
        )
    return F.log_softmax(logits, dim=-1)
