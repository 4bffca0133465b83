import math


def attention_pattern(
    q: Float[Tensor, "batch pos head d_head"], k: Float[Tensor, "batch pos head d_head"]
) -> Float[Tensor, "batch head query key"]:
    d_head = q.shape[-1]
    Q = q.permute(0, 2, 1, 3)  # batch head pos d_head
    K = k.permute(0, 2, 1, 3)
    att = Q @ K.transpose(-1, -2)
    att = att / math.sqrt(d_head)
    n = att.shape[-1]
    allowed = torch.tril(torch.ones(n, n, dtype=torch.bool))
    att = torch.where(allowed, att, torch.tensor(float("-inf")))
    return torch.softmax(att, dim=-1)
