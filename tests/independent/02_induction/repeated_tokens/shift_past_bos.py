def repeated_tokens(
    bos_token_id: int, d_vocab: int, seq_len: int, batch: int, generator: torch.Generator
) -> Int[Tensor, "batch pos"]:
    tokens = torch.randint(0, d_vocab - 1, (batch, seq_len), generator=generator)
    tokens[tokens >= bos_token_id] += 1
    bos_col = torch.full((batch, 1), bos_token_id, dtype=torch.long)
    return torch.cat((bos_col, tokens, tokens), dim=1)
