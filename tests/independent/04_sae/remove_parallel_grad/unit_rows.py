def remove_parallel_grad(W_dec: Float[Tensor, "d_sae d_in"], grad: Float[Tensor, "d_sae d_in"]) -> Float[Tensor, "d_sae d_in"]:
    w_hat = W_dec / W_dec.norm(dim=1, keepdim=True)
    parallel = (grad * w_hat).sum(dim=1, keepdim=True) * w_hat
    return grad - parallel
