def resample_dead(sae, x, dead):
    with torch.no_grad():
        errors = x - decode(sae, encode(sae, x))
        sq = errors.pow(2).sum(-1)
        worst_first = sq.sort(descending=True).indices
        new = torch.zeros_like(sae.W_dec)
        chosen = errors[worst_first[: int(dead.sum())]]
        new[dead] = chosen / chosen.norm(dim=1, keepdim=True)
        sae.W_dec.copy_(torch.where(dead[:, None], new, sae.W_dec))
        sae.W_enc.copy_(torch.where(dead[None, :], new.T, sae.W_enc))
        sae.b_enc.masked_fill_(dead, 0.0)
    return sae
