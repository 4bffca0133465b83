import math

def decompose_attn_scores(
    components: Float[Tensor, "term seq d_model"], scale: Float[Tensor, "seq"], W_Q: Float[Tensor, "d_model d_head"],
    b_Q: Float[Tensor, "d_head"], W_K: Float[Tensor, "d_model d_head"], b_K: Float[Tensor, "d_head"],
) -> Float[Tensor, "q_term k_term query key"]:
    x = components / scale.view(1, -1, 1)
    q = torch.einsum("tsm,md->tsd", x, W_Q)
    k = torch.einsum("tsm,md->tsd", x, W_K)
    q = torch.cat([q, b_Q.repeat(1, x.shape[1], 1)], dim=0)  # the bias as one more term
    k = torch.cat([k, b_K.repeat(1, x.shape[1], 1)], dim=0)
    return torch.einsum("aqd,bkd->abqk", q, k) / math.sqrt(q.shape[-1])
