import torch.nn.functional as F


def sample_rows(data, size, generator):
    picks = torch.randint(0, len(data), (size,), generator=generator, device=generator.device)
    return data[picks]


@torch.no_grad()
def renormalise(W):
    W.copy_(F.normalize(W, dim=-1))


def train_sae(sae, activations, steps, batch_size, lr, l1_coeff, generator):
    sae.b_dec.data = activations.mean(dim=0).clone()
    opt = torch.optim.Adam(sae.parameters(), lr=lr)
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        sae_loss(sae, sample_rows(activations, batch_size, generator), l1_coeff).backward()
        sae.W_dec.grad = remove_parallel_grad(sae.W_dec.detach(), sae.W_dec.grad)
        opt.step()
        renormalise(sae.W_dec)
    return sae
