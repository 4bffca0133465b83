def ov_copying_score(model, layer: int, head: int, tokens: Int[Tensor, "n"] | None = None) -> float:
    full = (model.W_E @ model.OV[layer, head] @ model.W_U).AB
    if tokens is not None:
        full = full.index_select(0, tokens).index_select(1, tokens)
    # a row copies when its own token's logit is the largest in the row
    return (full.diagonal() >= full.max(dim=-1).values).float().mean().item()
