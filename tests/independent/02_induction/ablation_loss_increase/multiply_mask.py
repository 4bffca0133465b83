def ablation_loss_increase(model, tokens):
    n_layers, n_heads = model.cfg.n_layers, model.cfg.n_heads
    clean_loss = model(tokens, return_type="loss")
    results = []
    for layer in range(n_layers):
        row = []
        for head in range(n_heads):
            keep = torch.ones(n_heads)
            keep[head] = 0.0
            hook = (f"blocks.{layer}.attn.hook_z", lambda z, hook, keep=keep: z * keep[:, None])
            row.append(model.run_with_hooks(tokens, return_type="loss", fwd_hooks=[hook]) - clean_loss)
        results.append(torch.stack(row))
    return torch.stack(results)
