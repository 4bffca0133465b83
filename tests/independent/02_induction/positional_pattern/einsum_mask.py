def positional_pattern(W_pos, W_Q, b_Q, W_K, b_K, eps):
    centred = W_pos - W_pos.mean(dim=1, keepdim=True)
    rms = centred.square().mean(dim=1, keepdim=True).add(eps).sqrt()
    normed = centred / rms
    queries = einops.einsum(normed, W_Q, "p m, m d -> p d") + b_Q
    keys = einops.einsum(normed, W_K, "p m, m d -> p d") + b_K
    raw = einops.einsum(queries, keys, "q d, k d -> q k") / (W_Q.shape[-1] ** 0.5)
    later = torch.arange(len(W_pos))[None, :] > torch.arange(len(W_pos))[:, None]
    raw[later] = -torch.inf
    return raw.softmax(dim=1)
