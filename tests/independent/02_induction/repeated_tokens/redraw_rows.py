def repeated_tokens(
    bos_token_id: int, d_vocab: int, seq_len: int, batch: int, generator: torch.Generator
) -> Int[Tensor, "batch pos"]:
    rows = []
    for _ in range(batch):
        seq = torch.randint(0, d_vocab, (seq_len,), generator=generator)
        while (seq == bos_token_id).any():  # redraw any BOS until none is left
            bad = seq == bos_token_id
            seq[bad] = torch.randint(0, d_vocab, (int(bad.sum()),), generator=generator)
        rows.append(torch.cat([torch.tensor([bos_token_id]), seq, seq]))
    return torch.stack(rows)
