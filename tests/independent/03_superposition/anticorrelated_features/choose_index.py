def anticorrelated_features(
    n_instances: int, batch: int, n_pairs: int, feature_probability: Float[Tensor, "inst"], generator: torch.Generator
) -> Float[Tensor, "inst batch feat"]:
    device = generator.device
    shape = (n_instances, batch, n_pairs)
    active = torch.rand(shape, generator=generator, device=device) < 2 * feature_probability.view(-1, 1, 1)
    which = torch.randint(0, 2, shape, generator=generator, device=device)  # 0: first of the pair, 1: second
    values = torch.rand(shape, generator=generator, device=device)
    out = torch.zeros(n_instances, batch, n_pairs, 2, device=device)
    out.scatter_(-1, which.unsqueeze(-1), (values * active).unsqueeze(-1))
    return out.flatten(start_dim=2)
