def composition_score(W_A: Float[Tensor, "d_model d_model"], W_B: Float[Tensor, "d_model d_model"]) -> float:
    frob = lambda M: M.pow(2).sum().sqrt()
    return (frob(W_A @ W_B) / (frob(W_A) * frob(W_B))).item()
