def generate_batch(n_instances, batch, n_features, feature_probability, generator):
    probs = feature_probability[:, None, None].expand(n_instances, batch, n_features)
    present = torch.bernoulli(probs, generator=generator)
    values = torch.rand(n_instances, batch, n_features, generator=generator, device=generator.device)
    return present * values
