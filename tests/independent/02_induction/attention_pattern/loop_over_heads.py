def attention_pattern(q, k):
    batch, pos, n_heads, d_head = q.shape
    out = torch.empty(batch, n_heads, pos, pos)
    for h in range(n_heads):
        s = q[:, :, h, :] @ k[:, :, h, :].transpose(1, 2) / d_head**0.5
        s = s + torch.full((pos, pos), float("-inf")).triu(1)
        out[:, h] = s.softmax(dim=-1)
    return out
