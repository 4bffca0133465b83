def attention_pattern(
    q: Float[Tensor, "batch pos head d_head"], k: Float[Tensor, "batch pos head d_head"]
) -> Float[Tensor, "batch head query key"]:
    # YOUR CODE HERE
    scores = torch.einsum("bqhd,bkhd->bhqk", q, k) / (q.size(-1) ** 0.5)
    seq = q.size(1)
    causal = torch.triu(torch.ones(seq, seq), diagonal=1).bool()
    scores[:, :, causal] = float("-inf")
    return scores.softmax(-1)
