def resample_dead(sae: SAE, x: Float[Tensor, "n d_in"], dead: Bool[Tensor, "d_sae"]) -> SAE:
    import torch.nn.functional as F

    with torch.no_grad():
        x_hat = decode(sae, encode(sae, x))
        err = x - x_hat
        n_dead = int(dead.sum().item())
        picked = torch.topk(torch.linalg.vector_norm(err, dim=-1), n_dead).indices
        new_rows = F.normalize(err[picked], dim=-1)
        idx = torch.nonzero(dead).squeeze(-1)
        sae.W_dec.index_copy_(0, idx, new_rows)
        sae.W_enc.index_copy_(1, idx, new_rows.T.contiguous())
        sae.b_enc[idx] = 0.0
    return sae
