import einops


def generate_batch(
    n_instances: int, batch: int, n_features: int, feature_probability: Float[Tensor, "inst"], generator: torch.Generator
) -> Float[Tensor, "inst batch feat"]:
    p = einops.repeat(feature_probability, "i -> i b f", b=batch, f=n_features)
    u = torch.rand(p.shape, generator=generator, device=generator.device)
    x = torch.rand(p.shape, generator=generator, device=generator.device)
    x[u >= p] = 0.0  # absent features
    return x
