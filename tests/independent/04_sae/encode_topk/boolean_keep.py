def encode_topk(sae: SAE, x: Float[Tensor, "batch d_in"]) -> Float[Tensor, "batch d_sae"]:
    acts = torch.relu((x - sae.b_dec) @ sae.W_enc + sae.b_enc)
    idx = torch.topk(acts, k=sae.k, dim=-1).indices
    keep = torch.zeros_like(acts, dtype=torch.bool).scatter_(-1, idx, True)
    return acts * keep
