def correlated_features(n_instances, batch, n_pairs, feature_probability, generator):
    dev = generator.device
    pair_draw = torch.rand((n_instances, batch, n_pairs), generator=generator, device=dev)
    pair_on = (pair_draw < feature_probability.reshape(n_instances, 1, 1)).float()
    owner = torch.arange(2 * n_pairs, device=dev) // 2  # feature f belongs to pair f // 2
    feature_on = pair_on[..., owner]
    magnitudes = torch.rand((n_instances, batch, 2 * n_pairs), generator=generator, device=dev)
    return feature_on * magnitudes
