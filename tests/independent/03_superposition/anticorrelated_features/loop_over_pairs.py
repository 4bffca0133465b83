def anticorrelated_features(n_instances, batch, n_pairs, feature_probability, generator):
    dev = generator.device
    features = []
    for _ in range(n_pairs):
        pair_on = torch.rand(n_instances, batch, generator=generator, device=dev) < 2 * feature_probability[:, None]
        coin = torch.rand(n_instances, batch, generator=generator, device=dev) < 0.5
        a = torch.rand(n_instances, batch, generator=generator, device=dev) * (pair_on & coin)
        b = torch.rand(n_instances, batch, generator=generator, device=dev) * (pair_on & ~coin)
        features += [a, b]
    return torch.stack(features, dim=-1)
