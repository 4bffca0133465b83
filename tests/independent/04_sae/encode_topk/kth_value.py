def encode_topk(sae, x):
    z = encode_relu(sae, x)
    kth = z.topk(sae.k, dim=1).values[:, -1:]  # each row's k-th largest
    return torch.where(z >= kth, z, torch.zeros_like(z))
