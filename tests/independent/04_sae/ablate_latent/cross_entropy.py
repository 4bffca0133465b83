def ablate_latent(model, sae: SAE, tokens: Int[Tensor, "batch pos"], hook_name: str, latent: int):
    import torch.nn.functional as F

    def per_token_loss(logits):
        log_probs = F.log_softmax(logits[:, :-1], dim=-1)
        return -log_probs.gather(-1, tokens[:, 1:, None]).squeeze(-1)

    def remove_latent(act, hook):
        b, p, d = act.shape
        body = act[:, 1:].reshape(-1, d)
        z = encode(sae, body)[:, latent]
        body = body - z[:, None] * sae.W_dec[latent][None, :]
        return torch.cat([act[:, :1], body.reshape(b, p - 1, d)], dim=1)

    with torch.no_grad():
        clean_logits = model(tokens)
        ablated_logits = model.run_with_hooks(tokens, fwd_hooks=[(hook_name, remove_latent)])
    return per_token_loss(ablated_logits) - per_token_loss(clean_logits)
