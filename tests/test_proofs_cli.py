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
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "error" in err and "Traceback" not in err


def test_subcommand_registry():
    assert "constants" in SUBCOMMANDS
    add, run, help_ = SUBCOMMANDS["constants"]
    assert callable(add) and callable(run)
