import torch.nn.functional as F


def explained_variance(x, x_hat):
    return 1 - F.mse_loss(x_hat, x, reduction="sum") / (x - x.mean(0)).square().sum()
