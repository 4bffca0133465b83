import einops
import torch.nn.functional as F


def remove_parallel_grad(W_dec: Float[Tensor, "d_sae d_in"], grad: Float[Tensor, "d_sae d_in"]) -> Float[Tensor, "d_sae d_in"]:
    directions = F.normalize(W_dec, dim=-1)
    along = einops.reduce(grad * directions, "s d -> s 1", "sum")
    return grad - along * directions
