def decompose_attn_scores(components, scale, W_Q, b_Q, W_K, b_K):
    seq = scale.shape[0]
    normed = components / scale[None, :, None]
    queries = torch.cat((normed @ W_Q, b_Q[None, None].expand(1, seq, -1)))  # [term + 1, query, d_head]
    keys = torch.cat((normed @ W_K, b_K[None, None].expand(1, seq, -1)))  # [term + 1, key, d_head]
    # [q_term, 1, query, 1, d] * [1, k_term, 1, key, d], summed over d
    products = queries[:, None, :, None, :] * keys[None, :, None, :, :]
    return products.sum(-1) * W_Q.shape[-1] ** -0.5
