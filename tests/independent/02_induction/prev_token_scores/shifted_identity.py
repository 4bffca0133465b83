def prev_token_scores(patterns):
    n = patterns.shape[-1]
    previous = torch.diag(torch.ones(n - 1), -1)  # 1 at [q, q - 1]
    summed = torch.einsum("lbhqk,qk->lbh", patterns, previous)
    return summed.mean(1) / (n - 1)
