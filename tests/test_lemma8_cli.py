"""``proofs-checks lemma8``: the certified Lemma 8 checker from the command line."""

from proofs_checks.cli import main


def test_lemma8_certified_for_small_eta(capsys):
    assert main(["lemma8", "--eta", "0.05"]) == 0
    out = capsys.readouterr().out
    assert "Assumptions 4, 5, 6 over the whole box: certified" in out


def test_lemma8_counterexample_at_eta_0_1(capsys):
    # Assumption 5 fails inside the box for η > η₅ ≈ 0.09765 (docs/lemma8.md)
    assert main(["lemma8", "--eta", "0.1"]) == 1  # a counterexample exits non-zero (issue 14)
    out, err = capsys.readouterr()
    assert "over the whole box: counterexample" in out
    assert "A5.k1" in out and "counterexample" in err


def test_lemma8_inconclusive_exits_non_zero(capsys):
    assert main(["lemma8", "--max-boxes", "1"]) == 1
    out, err = capsys.readouterr()
    assert "inconclusive" in out and "inconclusive" in err


def test_lemma8_bad_eta(capsys):
    assert main(["lemma8", "--eta", "2"]) == 2
    assert "--eta" in capsys.readouterr().err
