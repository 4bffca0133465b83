def repeated_tokens(bos_token_id, d_vocab, seq_len, batch, generator):
    weights = torch.ones(d_vocab)
    weights[bos_token_id] = 0  # never draw BOS
    draws = torch.multinomial(weights, batch * seq_len, replacement=True, generator=generator).view(batch, seq_len)
    return torch.cat([torch.full((batch, 1), bos_token_id), draws.repeat(1, 2)], dim=1).long()
