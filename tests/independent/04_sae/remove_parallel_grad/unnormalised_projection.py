def remove_parallel_grad(W_dec: Float[Tensor, "d_sae d_in"], grad: Float[Tensor, "d_sae d_in"]) -> Float[Tensor, "d_sae d_in"]:
    # g - (g.w / w.w) w: the same projection without normalising w first
    dots = (grad * W_dec).sum(-1, keepdim=True)
    norms_sq = (W_dec * W_dec).sum(-1, keepdim=True)
    return grad - dots / norms_sq * W_dec
