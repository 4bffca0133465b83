def generate_batch(
    n_instances: int, batch: int, n_features: int, feature_probability: Float[Tensor, "inst"], generator: torch.Generator
) -> Float[Tensor, "inst batch feat"]:
    size = (n_instances, batch, n_features)
    feats = torch.rand(size, generator=generator, device=generator.device)
    mask = torch.rand(size, generator=generator, device=generator.device) <= feature_probability.view(-1, 1, 1)
    return torch.where(mask, feats, torch.zeros_like(feats))
