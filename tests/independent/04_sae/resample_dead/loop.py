def resample_dead(sae, x, dead):
    with torch.no_grad():
        residual = x - decode(sae, encode(sae, x))
        order = torch.argsort((residual ** 2).sum(dim=1), descending=True)
        for i, j in enumerate(torch.where(dead)[0].tolist()):
            e = residual[order[i]]
            e = e / e.norm()
            sae.W_dec[j] = e
            sae.W_enc[:, j] = e
            sae.b_enc[j] = 0
    return sae
