def decompose_attn_scores(components, scale, W_Q, b_Q, W_K, b_K):
    n_terms, seq, _ = components.shape
    d_head = W_Q.shape[1]
    q_parts = [components[t] / scale[:, None] @ W_Q for t in range(n_terms)] + [b_Q.expand(seq, d_head)]
    k_parts = [components[t] / scale[:, None] @ W_K for t in range(n_terms)] + [b_K.expand(seq, d_head)]
    out = torch.zeros(n_terms + 1, n_terms + 1, seq, seq)
    for i, q in enumerate(q_parts):
        for j, k in enumerate(k_parts):
            out[i, j] = q @ k.T / d_head ** 0.5
    return out
