def neuron_forward(W, b, x):
    h = torch.relu(torch.einsum("inf,ibf->ibn", W, x))
    return torch.relu(torch.einsum("ibn,inf->ibf", h, W) + b.unsqueeze(1))
