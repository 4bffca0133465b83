def ov_copying_score(model, layer: int, head: int, tokens: Int[Tensor, "n"] | None = None) -> float:
    full_ov = model.W_E @ model.OV[layer, head] @ model.W_U
    matrix = full_ov.AB
    if tokens is not None:
        matrix = matrix[tokens[:, None], tokens[None, :]]
    top1 = matrix.topk(1, dim=-1).indices.squeeze(-1)
    return float((top1 == torch.arange(len(matrix), device=matrix.device)).sum() / len(matrix))
