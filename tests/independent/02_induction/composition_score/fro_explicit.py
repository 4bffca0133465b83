def composition_score(W_A, W_B):
    num = torch.norm(W_A @ W_B, p="fro")
    den = torch.norm(W_A, p="fro") * torch.norm(W_B, p="fro")
    return float(num / den)
