import torch.nn.functional as F


def mmcs(W_dec, features):
    sims = F.cosine_similarity(features[:, None, :], W_dec[None, :, :], dim=-1)  # [n_features, d_sae]
    return sims.amax(dim=-1).mean()
