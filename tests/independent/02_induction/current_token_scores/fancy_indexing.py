def current_token_scores(patterns):
    idx = torch.arange(1, patterns.shape[-1])
    return patterns[..., idx, idx].mean(dim=-1).mean(dim=1)
