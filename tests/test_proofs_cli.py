import json

from proofs_checks.cli import SUBCOMMANDS, main


def test_constants_text(capsys):
    assert (
        main(["constants", "--dataset", "three-points", "--epsilon", "0.25", "--alpha0", "0.5"])
        == 0
    )
    out = capsys.readouterr().out
    assert "lambda_star_alpha0" in out and "local max" in out and "Assumption 2: holds" in out


def test_constants_json(capsys):
    assert main(["constants", "--dataset", "stewart", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["constants"]["D_max"] > 0 and d["extremal_vectors"]
    assert {a["name"] for a in d["assumptions"]} >= {"Assumption 1", "Assumption 2"}


def test_assumption3_dataset_and_eta(capsys):
    assert main(["constants", "--dataset", "assumption3", "--eta", "0.1", "--seed", "2"]) == 0
    assert "Assumption 3: holds" in capsys.readouterr().out


def test_errors_exit_2_without_traceback(capsys):
    for argv in (
        ["constants", "--dataset", "nope"],
        ["constants", "--epsilon", "0.5"],
        ["constants", "--gamma", "2"],
        ["frobnicate"],
        [],
        ["constants", "--eps", "0.1"],  # an abbreviation of --epsilon: refused, not guessed
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "error" in err and "Traceback" not in err


def test_subcommand_registry():
    assert "constants" in SUBCOMMANDS
    add, run, help_ = SUBCOMMANDS["constants"]
    assert callable(add) and callable(run)


# ---------------------------------------------------------------------------- issue 14
def _one_line(err: str) -> bool:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    return len(lines) == 1 and "Traceback" not in err


def test_an_arithmetic_failure_gives_one_line(capsys, monkeypatch):
    """An arithmetic error inside a computation (none is known since the constants dividing
    by ``α_min`` or ``D_min`` became undefined at 0) is one line and status 1."""
    import proofs_checks.constants as K
    from proofs_checks.cli import main as pc_main

    def broken(*_a, **_k):
        raise ZeroDivisionError("float division by zero")

    monkeypatch.setattr(K, "c_alpha0", broken)
    assert pc_main(["constants"]) == 1
    err = capsys.readouterr().err
    assert _one_line(err) and "computation failed (ZeroDivisionError" in err, err


def test_degenerate_or_huge_inputs_give_one_line(capsys, tmp_path):
    from proofs_checks.cli import main as pc_main

    one = tmp_path / "one.csv"
    one.write_text("0.5,1\n-0.5,0\n0.25,2\n")
    big = tmp_path / "big.csv"
    big.write_text("1e300,1\n-1e300,0\n0.125,1\n")
    # d = 1, two points on one side of 0: α_min = 0, the constants dividing by it are
    # reported undefined (a ZeroDivisionError ended the command before)
    assert pc_main(["constants", "--dataset", str(one)]) == 0
    out = capsys.readouterr().out
    assert "c_alpha0               undefined (α_min=0.0" in out, out
    for argv, code, word in (
        (["constants", "--dataset", str(big)], 2, "--dataset"),
        (["constants", "--alpha0", "1e308"], 2, "--alpha0"),
        (["lemmas", "--markdown", str(tmp_path / "no" / "x.md")], 2, "--markdown"),
        (["lemmas", "--scale", "1e200"], 2, "--scale"),
    ):
        rc = pc_main(argv)
        err = capsys.readouterr().err
        assert rc == code and _one_line(err) and word in err, (argv, rc, err)
