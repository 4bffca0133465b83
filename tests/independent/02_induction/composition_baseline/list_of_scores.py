def composition_baseline(d_model: int, d_head: int, n_samples: int, generator: torch.Generator) -> float:
    scores = []
    for i in range(n_samples):
        mats = [torch.randn(d_model, d_head, generator=generator) @ torch.randn(d_head, d_model, generator=generator)
                for _ in range(2)]
        scores.append(composition_score(*mats))
    return float(torch.tensor(scores).mean())
