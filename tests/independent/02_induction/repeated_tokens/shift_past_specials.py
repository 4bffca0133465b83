def repeated_tokens(
    bos_token_id: int, special_ids: list[int], d_vocab: int, seq_len: int, batch: int, generator: torch.Generator
) -> Int[Tensor, "batch pos"]:
    tokens = torch.randint(0, d_vocab - len(special_ids), (batch, seq_len), generator=generator)
    for special in sorted(special_ids):  # step over each special id in turn, smallest first
        tokens[tokens >= special] += 1
    bos_col = torch.full((batch, 1), bos_token_id, dtype=torch.long)
    return torch.cat((bos_col, tokens, tokens), dim=1)
