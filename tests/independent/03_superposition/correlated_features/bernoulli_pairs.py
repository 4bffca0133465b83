def correlated_features(n_instances, batch, n_pairs, feature_probability, generator):
    p = feature_probability.view(-1, 1, 1).expand(n_instances, batch, n_pairs)
    on = torch.bernoulli(p, generator=generator)  # one coin per pair
    vals = torch.rand(n_instances, batch, n_pairs, 2, generator=generator, device=generator.device)
    return (vals * on.unsqueeze(-1)).reshape(n_instances, batch, 2 * n_pairs)
