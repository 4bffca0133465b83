def steer(model, tokens, hook_name, direction, coeff):
    def steering_hook(activation, hook):
        activation = activation.clone()
        activation[:, 1:, :] += coeff * direction
        return activation

    with torch.no_grad():
        logits = model.run_with_hooks(tokens, fwd_hooks=[(hook_name, steering_hook)])
    return torch.log_softmax(logits, dim=-1)
