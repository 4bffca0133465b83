def encode_batchtopk(sae, x):
    z = encode_relu(sae, x)
    flat = z.view(-1)
    how_many = sae.k * (flat.numel() // z.shape[-1])
    keep = torch.zeros_like(flat, dtype=torch.bool)
    keep[flat.topk(how_many).indices] = True
    return (flat * keep).view(z.shape)
