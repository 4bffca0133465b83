def composition_baseline(d_model: int, d_head: int, n_samples: int, generator: torch.Generator) -> float:
    results = torch.zeros(n_samples)
    for s in range(n_samples):
        u1, v1 = torch.randn(d_model, d_head, generator=generator), torch.randn(d_head, d_model, generator=generator)
        u2, v2 = torch.randn(d_model, d_head, generator=generator), torch.randn(d_head, d_model, generator=generator)
        results[s] = composition_score(u1 @ v1, u2 @ v2)
    return results.mean().item()
