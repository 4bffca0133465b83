def train_toy_models(W, b, feature_probability, importance, steps, batch_size, lr, generator, x_test):
    optimiser = torch.optim.Adam(params=[W, b], lr=lr)

    def step_once():
        data = generate_batch(W.shape[0], batch_size, W.shape[2], feature_probability, generator)
        total = importance_loss(toy_forward(W, b, data), data, importance).sum()
        optimiser.zero_grad(set_to_none=True)
        total.backward()
        optimiser.step()
        return total.item()

    history = [step_once() for _ in range(steps)]
    return toy_forward(W, b, x_test).detach()
