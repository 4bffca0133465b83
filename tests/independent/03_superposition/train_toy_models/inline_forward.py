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
    adam = torch.optim.Adam([W, b], lr=lr)
    n_instances, n_hidden, n_features = W.shape
    for _ in range(steps):
        x = generate_batch(n_instances, batch_size, n_features, feature_probability, generator)
        h = torch.einsum("ihf,ibf->ibh", W, x)
        x_hat = torch.relu(torch.einsum("ihf,ibh->ibf", W, h) + b[:, None])
        per_instance = (importance[:, None] * (x - x_hat) ** 2).mean((1, 2))
        adam.zero_grad()
        per_instance.sum().backward()
        adam.step()
    with torch.inference_mode():
        return toy_forward(W, b, x_test)
