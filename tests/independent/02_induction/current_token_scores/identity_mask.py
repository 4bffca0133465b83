def current_token_scores(patterns: Float[Tensor, "layer batch head query key"]) -> Float[Tensor, "layer head"]:
    """Mean attention of each head to its own position, skipping query 0."""
    pos = patterns.shape[-1]
    eye = torch.eye(pos)
    eye[0, 0] = 0  # query 0 can only attend to itself
    per_example = (patterns * eye).sum(dim=(-1, -2)) / (pos - 1)
    return per_example.mean(dim=1)
