import torch.nn.functional as F


def mmcs(W_dec: Float[Tensor, "d_sae d_in"], features: Float[Tensor, "n_features d_in"]) -> Float[Tensor, ""]:
    d = F.normalize(W_dec, dim=1)
    cos = torch.einsum("fd,sd->fs", features, d)
    return cos.max(dim=1).values.mean()
