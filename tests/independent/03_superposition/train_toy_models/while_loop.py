def train_toy_models(W, b, feature_probability, importance, steps, batch_size, lr, generator, x_test):
    optim = torch.optim.Adam([W, b], lr=lr)
    done = 0
    while done < steps:
        sample = generate_batch(len(W), batch_size, W.size(-1), feature_probability, generator)
        loss = importance_loss(toy_forward(W, b, sample), sample, importance)
        for p in (W, b):
            p.grad = None
        loss.sum().backward()
        optim.step()
        done += 1
    return toy_forward(W, b, x_test).detach()
