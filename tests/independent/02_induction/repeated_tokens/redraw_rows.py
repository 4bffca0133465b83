def repeated_tokens(
    bos_token_id: int, special_ids: list[int], d_vocab: int, seq_len: int, batch: int, generator: torch.Generator
) -> Int[Tensor, "batch pos"]:
    specials = torch.tensor(special_ids)
    rows = []
    for _ in range(batch):
        seq = torch.randint(0, d_vocab, (seq_len,), generator=generator)
        while torch.isin(seq, specials).any():  # redraw any special token until none is left
            bad = torch.isin(seq, specials)
            seq[bad] = torch.randint(0, d_vocab, (int(bad.sum()),), generator=generator)
        rows.append(torch.cat([torch.tensor([bos_token_id]), seq, seq]))
    return torch.stack(rows)
