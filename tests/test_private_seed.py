"""`interplab references` makes private references from a long random secret, and keeps it."""

import json

from interplab.cli import DEFAULT_SEED, _seed_for, main, parser


def test_private_references_get_a_random_secret_that_is_reused_once_saved(tmp_path):
    args = parser().parse_args(["references", "02_induction", "--out", str(tmp_path)])
    first, second = _seed_for(args, tmp_path, "02_induction"), _seed_for(args, tmp_path, "02_induction")
    assert len(first) == 32 and int(first, 16) and first != second
    (tmp_path / "02_induction").mkdir()
    (tmp_path / "02_induction" / "meta.json").write_text(json.dumps({"lab": "02_induction", "seed": first}))
    assert _seed_for(args, tmp_path, "02_induction") == first


def test_the_repository_references_use_the_public_default(tmp_path):
    args = parser().parse_args(["references", "02_induction"])
    assert _seed_for(args, tmp_path, "02_induction") == str(DEFAULT_SEED)


def test_a_short_seed_is_warned_about(capsys):
    assert main(["references", "no_such_lab", "--seed", "918273"]) == 2
    err = capsys.readouterr().err
    assert "WARNING: a seed of 6 characters can be guessed" in err and "no lab named 'no_such_lab'" in err
