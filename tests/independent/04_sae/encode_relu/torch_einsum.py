import torch.nn.functional as F


def encode_relu(sae, x):
    centred = x - sae.b_dec
    return F.relu(torch.einsum("bd,ds->bs", centred, sae.W_enc) + sae.b_enc)
