def train_sae(
    sae: SAE,
    activations: Float[Tensor, "n d_in"],
    steps: int,
    batch_size: int,
    lr: float,
    l1_coeff: float,
    generator: torch.Generator,
) -> SAE:
    sae.b_dec.requires_grad_(False)
    sae.b_dec[:] = activations.mean(dim=0)
    sae.b_dec.requires_grad_(True)
    adam = torch.optim.Adam(list(sae.parameters()), lr=lr)
    losses = []
    for i in range(steps):
        x = activations[torch.randint(len(activations), (batch_size,), generator=generator, device=generator.device)]
        z = encode(sae, x)
        recon = ((decode(sae, z) - x) ** 2).sum(dim=1).mean()
        loss = recon if sae.k is not None else recon + l1_coeff * z.sum(dim=1).mean()
        for p in sae.parameters():
            p.grad = None
        loss.backward()
        g = sae.W_dec.grad
        unit = sae.W_dec.detach() / sae.W_dec.detach().norm(dim=1, keepdim=True)
        sae.W_dec.grad = g - (g * unit).sum(1, keepdim=True) * unit
        adam.step()
        with torch.no_grad():
            sae.W_dec.copy_(sae.W_dec / sae.W_dec.norm(dim=1, keepdim=True))
        losses.append(loss.item())
    return sae
