def composition_baseline(d_model, d_head, n_samples, generator):
    def sample():
        left = torch.randn(n_samples, d_model, d_head, generator=generator)
        right = torch.randn(n_samples, d_head, d_model, generator=generator)
        return left @ right

    W_A, W_B = sample(), sample()
    scores = (W_A @ W_B).norm(dim=(1, 2)) / (W_A.norm(dim=(1, 2)) * W_B.norm(dim=(1, 2)))
    return scores.mean().item()
