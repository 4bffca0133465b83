def composition_score(W_A: Float[Tensor, "d_model d_model"], W_B: Float[Tensor, "d_model d_model"]) -> float:
    return ((W_A @ W_B).norm() / (W_A.norm() * W_B.norm())).item()
