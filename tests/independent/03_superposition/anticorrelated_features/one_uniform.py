def anticorrelated_features(n_instances, batch, n_pairs, feature_probability, generator):
    dev = generator.device
    u = torch.rand(n_instances, batch, n_pairs, generator=generator, device=dev)
    p = feature_probability[:, None, None]
    first_on = u < p  # [0, p): the first feature, [p, 2p): the second, otherwise neither
    second_on = (u >= p) & (u < 2 * p)
    mask = torch.zeros(n_instances, batch, 2 * n_pairs, device=dev)
    mask[..., 0::2] = first_on.float()
    mask[..., 1::2] = second_on.float()
    return mask * torch.rand(n_instances, batch, 2 * n_pairs, generator=generator, device=dev)
