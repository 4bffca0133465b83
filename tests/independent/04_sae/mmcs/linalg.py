def mmcs(W_dec: Float[Tensor, "d_sae d_in"], features: Float[Tensor, "n_features d_in"]) -> Float[Tensor, ""]:
    directions = W_dec / torch.linalg.norm(W_dec, dim=-1, keepdim=True)
    sims = features @ directions.T
    return torch.max(sims, dim=-1)[0].mean()
