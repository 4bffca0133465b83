def eigenvalue_copying_scores(model, layer: int) -> Float[Tensor, "head"]:
    scores = torch.empty(model.cfg.n_heads)
    for head in range(model.cfg.n_heads):
        W_OV = (model.W_V[layer, head] @ model.W_O[layer, head]).double()
        tail_head = W_OV @ model.W_U.double() @ model.W_E.double()  # [d_model, d_model]: same non-zero spectrum
        values = torch.linalg.eigvals(tail_head)
        positive_part = values.real.sum()
        scores[head] = (positive_part / values.abs().sum()).detach()
    return scores
