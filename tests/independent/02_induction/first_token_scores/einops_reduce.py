def first_token_scores(patterns):
    first_column = patterns[..., 1:, 0]
    return einops.reduce(first_column, "layer batch head query -> layer head", reduction="mean")
