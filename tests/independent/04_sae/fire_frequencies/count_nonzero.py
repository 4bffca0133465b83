def fire_frequencies(z):
    return torch.count_nonzero(z, dim=0) / z.shape[0]
