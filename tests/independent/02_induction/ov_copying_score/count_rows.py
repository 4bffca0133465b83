def ov_copying_score(model, layer, head, tokens=None):
    ov = model.OV[layer, head]
    emb = model.W_E if tokens is None else model.W_E[tokens]
    unemb = model.W_U if tokens is None else model.W_U[:, tokens]
    circuit = (emb @ ov @ unemb).AB
    hits = 0
    for row in range(circuit.shape[0]):
        if circuit[row].argmax().item() == row:
            hits += 1
    return hits / circuit.shape[0]
