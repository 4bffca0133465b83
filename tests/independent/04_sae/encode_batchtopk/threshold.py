def encode_batchtopk(sae, x):
    pre = torch.relu((x - sae.b_dec) @ sae.W_enc + sae.b_enc)
    n_keep = sae.k * pre.numel() // pre.shape[-1]
    # the value of the n_keep-th largest entry over the whole batch
    cutoff = pre.reshape(-1).sort(descending=True).values[n_keep - 1]
    return torch.where(pre >= cutoff, pre, torch.zeros_like(pre))
