def composition_baseline(d_model: int, d_head: int, n_samples: int, generator: torch.Generator) -> float:
    total = 0.0
    for _ in range(n_samples):
        A = torch.randn(d_model, d_head, generator=generator) @ torch.randn(d_head, d_model, generator=generator)
        B = torch.randn(d_model, d_head, generator=generator) @ torch.randn(d_head, d_model, generator=generator)
        total += composition_score(A, B)
    return total / n_samples
