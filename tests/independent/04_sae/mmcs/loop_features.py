def mmcs(W_dec: Float[Tensor, "d_sae d_in"], features: Float[Tensor, "n_features d_in"]) -> Float[Tensor, ""]:
    unit = W_dec / W_dec.norm(dim=1, keepdim=True)
    best = []
    for f in features:
        best.append((unit @ f).max())
    return torch.stack(best).mean()
