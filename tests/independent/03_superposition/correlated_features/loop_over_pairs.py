def correlated_features(
    n_instances: int, batch: int, n_pairs: int, feature_probability: Float[Tensor, "inst"], generator: torch.Generator
) -> Float[Tensor, "inst batch feat"]:
    out = torch.zeros(n_instances, batch, 2 * n_pairs, device=generator.device)
    threshold = feature_probability.to(generator.device)[:, None]
    for k in range(n_pairs):
        present = torch.rand(n_instances, batch, generator=generator, device=generator.device) < threshold
        for f in (2 * k, 2 * k + 1):
            value = torch.rand(n_instances, batch, generator=generator, device=generator.device)
            out[:, :, f] = torch.where(present, value, 0.0)
    return out
