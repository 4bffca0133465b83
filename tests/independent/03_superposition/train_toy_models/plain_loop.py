def train_toy_models(
    W: Float[Tensor, "inst hidden feat"],
    b: Float[Tensor, "inst feat"],
    feature_probability: Float[Tensor, "inst"],
    importance: Float[Tensor, "inst feat"],
    steps: int,
    batch_size: int,
    lr: float,
    generator: torch.Generator,
    x_test: Float[Tensor, "inst test_batch feat"],
) -> Float[Tensor, "inst test_batch feat"]:
    opt = torch.optim.Adam([W, b], lr=lr)
    n_inst, _, n_feat = W.shape
    for step in range(steps):
        batch = generate_batch(n_inst, batch_size, n_feat, feature_probability, generator)
        out = toy_forward(W, b, batch)
        loss = importance_loss(out, batch, importance).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        x_hat = toy_forward(W, b, x_test)
    return x_hat
