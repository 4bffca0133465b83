def neuron_top_share(W):
    n_inst, n_neurons, n_feat = W.shape
    out = torch.zeros(n_inst, n_neurons)
    for k in range(n_inst):
        for j in range(n_neurons):
            weights = [max(float(w), 0.0) ** 2 for w in W[k, j]]
            if sum(weights) > 0:
                out[k, j] = max(weights) / sum(weights)
    return out
