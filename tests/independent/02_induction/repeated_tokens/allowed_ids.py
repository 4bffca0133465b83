def repeated_tokens(
    bos_token_id: int, d_vocab: int, seq_len: int, batch: int, generator: torch.Generator
) -> Int[Tensor, "batch pos"]:
    allowed = torch.tensor([t for t in range(d_vocab) if t != bos_token_id])
    picks = torch.randint(len(allowed), size=(batch, seq_len), generator=generator)
    half = allowed[picks]
    out = torch.empty(batch, 1 + 2 * seq_len, dtype=torch.long)
    out[:, 0] = bos_token_id
    out[:, 1 : seq_len + 1] = half
    out[:, seq_len + 1 :] = half
    return out
