"""The documentation: the tutorial, how-to and API code runs as shown; the site builds with ``-W``.

The site build runs Sphinx in a subprocess on a copy of ``docs/`` and ``examples/`` (nothing is
written into the checkout), which also executes the gallery (sphinx-gallery); about 30–60 s on
two cores.  Sphinx and its extensions come with the ``test`` extra; without them the build test
is skipped.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
EXECUTED = sorted([*(DOCS / "tutorial").glob("*.md"), *(DOCS / "howto").glob("*.md"),
                   DOCS / "api.md", DOCS / "index.md"])
FENCE = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def _programs(page: Path) -> list[str]:
    """The page's ```python blocks, less the call signatures of docs/api.md (not programs)."""
    blocks = FENCE.findall(page.read_text(encoding="utf-8"))
    return [b for b in blocks if "def add_arguments" not in b
            and not b.lstrip().startswith(("simulate(", "gradient_descent(", "sweep("))]


def test_there_are_tutorial_pages_with_code():
    names = {p.name for p in EXECUTED}
    assert {"first-run.md", "your-own-data.md", "reading-a-trajectory.md"} <= names
    assert sum(len(_programs(p)) for p in EXECUTED) >= 15


@pytest.mark.parametrize("page", EXECUTED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_page_code_blocks_run(page, tmp_path, monkeypatch):
    """Every ```python block of the page, in order, in one namespace, in an empty folder."""
    blocks = _programs(page)
    if any("import pandas" in b or "to_xarray" in b or "events_frame" in b for b in blocks):
        pytest.importorskip("xarray")
        pytest.importorskip("pandas")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    namespace: dict = {"__name__": "__docs__"}
    for i, block in enumerate(blocks):
        code = compile(block, f"{page.relative_to(ROOT)} (block {i + 1})", "exec")
        exec(code, namespace)  # noqa: S102 - the documentation's own examples


def _require_sphinx() -> None:
    for module in ("sphinx", "myst_parser", "sphinx_gallery", "numpydoc",
                   "pydata_sphinx_theme", "pandas"):  # the gallery reads events with pandas
        pytest.importorskip(module)


@pytest.mark.slow  # single scenario, moved out of CI's 15 minutes (session 50)
def test_site_builds_without_warnings(tmp_path):
    _require_sphinx()
    shutil.copytree(DOCS, tmp_path / "docs",
                    ignore=shutil.ignore_patterns("_build", "auto_examples", "generated",
                                                  "sg_execution_times.rst"))
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    env = {**os.environ, "MPLBACKEND": "Agg",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    out = tmp_path / "html"
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
         "-d", str(tmp_path / "doctrees"), "docs", str(out)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-6000:]
    for page in ("index", "tutorial/first-run", "tutorial/reading-a-trajectory",
                 "howto/resume", "reference/file-formats", "cli", "lemma8",
                 "reference/generated/pwflow.trajectory",
                 "reference/generated/proofs_checks.lemma8",
                 "auto_examples/index", "auto_examples/plot_figure2",
                 "auto_examples/plot_sliding_vs_gd"):
        assert (out / f"{page}.html").is_file(), page
    api = (out / "reference/generated/pwflow.trajectory.html").read_text(encoding="utf-8")
    assert "to_xarray" in api and "events_frame" in api
    example = (out / "auto_examples/plot_figure2.html").read_text(encoding="utf-8")
    assert "plot_figure2.ipynb" in example and "sphx-glr-single-img" in example
    assert "Total running time of the script" in example
    assert list((out / "_images").glob("sphx_glr_plot_figure2_*.png"))
