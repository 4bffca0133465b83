import einops


def importance_loss(x_hat, x, importance):
    err = (x - x_hat) ** 2
    weighted = err * einops.rearrange(importance, "i f -> i 1 f")
    return einops.reduce(weighted, "i b f -> i", "mean")
