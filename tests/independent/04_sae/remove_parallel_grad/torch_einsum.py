def remove_parallel_grad(W_dec, grad):
    unit = W_dec / torch.linalg.vector_norm(W_dec, dim=-1, keepdim=True)
    coeff = torch.einsum("sd,sd->s", grad, unit)
    return grad - coeff[:, None] * unit
