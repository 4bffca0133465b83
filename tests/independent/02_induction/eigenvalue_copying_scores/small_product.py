def eigenvalue_copying_scores(model, layer: int) -> Float[Tensor, "head"]:
    # M = (W_E W_V) (W_O W_U) has the same non-zero eigenvalues as the d_head x d_head matrix (W_O W_U)(W_E W_V)
    left = model.W_E @ model.W_V[layer]  # [head, d_vocab, d_head]
    right = model.W_O[layer] @ model.W_U  # [head, d_head, d_vocab]
    small = right @ left  # [head, d_head, d_head]
    eig = torch.linalg.eigvals(small)
    return eig.sum(dim=-1).real / eig.abs().sum(dim=-1)
