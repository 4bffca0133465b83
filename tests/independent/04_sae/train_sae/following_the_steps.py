def train_sae(
    sae: SAE,
    activations: Float[Tensor, "n d_in"],
    steps: int,
    batch_size: int,
    lr: float,
    l1_coeff: float,
    generator: torch.Generator,
) -> SAE:
    n = activations.shape[0]
    with torch.no_grad():
        sae.b_dec.copy_(activations.mean(0))
    optimizer = torch.optim.Adam(sae.parameters(), lr=lr)
    for step in range(steps):
        idx = torch.randint(0, n, (batch_size,), generator=generator, device=generator.device)
        batch = activations[idx]
        optimizer.zero_grad()
        loss = sae_loss(sae, batch, l1_coeff)
        loss.backward()
        sae.W_dec.grad = remove_parallel_grad(sae.W_dec.detach(), sae.W_dec.grad)
        optimizer.step()
        with torch.no_grad():
            sae.W_dec.div_(sae.W_dec.norm(dim=-1, keepdim=True))
    return sae
