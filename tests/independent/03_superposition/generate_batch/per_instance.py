def generate_batch(
    n_instances: int, batch: int, n_features: int, feature_probability: Float[Tensor, "inst"], generator: torch.Generator
) -> Float[Tensor, "inst batch feat"]:
    out = torch.zeros(n_instances, batch, n_features, device=generator.device)
    for i in range(n_instances):
        vals = torch.rand(batch, n_features, generator=generator, device=generator.device)
        keep = torch.rand(batch, n_features, generator=generator, device=generator.device) < feature_probability[i]
        out[i] = vals * keep
    return out
