def attention_pattern(
    q: Float[Tensor, "batch pos head d_head"], k: Float[Tensor, "batch pos head d_head"]
) -> Float[Tensor, "batch head query key"]:
    scores = einops.einsum(q, k, "b q h d, b k h d -> b h q k")
    scores = scores / math.sqrt(q.shape[-1])
    mask = torch.ones(q.shape[1], q.shape[1]).triu(1).bool()
    scores = scores.masked_fill(mask, -float("inf"))
    pattern = torch.softmax(scores, dim=-1)
    return pattern
