import math

def positional_pattern(
    W_pos: Float[Tensor, "n_ctx d_model"], W_Q: Float[Tensor, "d_model d_head"], b_Q: Float[Tensor, "d_head"],
    W_K: Float[Tensor, "d_model d_head"], b_K: Float[Tensor, "d_head"], eps: float,
) -> Float[Tensor, "query key"]:
    mean = W_pos.mean(-1, keepdim=True)
    var = W_pos.var(-1, unbiased=False, keepdim=True)
    resid = (W_pos - mean) * torch.rsqrt(var + eps)
    scores = (resid @ W_Q + b_Q) @ (resid @ W_K + b_K).T / math.sqrt(W_Q.shape[1])
    n = W_pos.shape[0]
    allowed = torch.tril(torch.ones(n, n, dtype=torch.bool))
    return torch.softmax(torch.where(allowed, scores, torch.tensor(float("-inf"))), dim=-1)
