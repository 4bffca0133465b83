def top_activating(z, latent, k):
    values, indices = torch.topk(z[:, latent], k)
    return indices
