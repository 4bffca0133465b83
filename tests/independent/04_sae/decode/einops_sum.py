import einops


def decode(sae, z):
    return einops.einsum(z, sae.W_dec, "b s, s d -> b d") + sae.b_dec
