def ov_copying_score(model, layer: int, head: int, tokens: Int[Tensor, "n"] | None = None) -> float:
    W_OV = model.W_V[layer, head] @ model.W_O[layer, head]  # [d_model, d_model]
    full = model.W_E @ W_OV @ model.W_U
    if tokens is not None:
        full = full[tokens][:, tokens]
    predicted = full.argmax(dim=1)
    correct = predicted == torch.arange(full.shape[0], device=full.device)
    return correct.float().mean().item()
