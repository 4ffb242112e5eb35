"""Figures of a sweep: the phase diagram of outcomes and line plots of summary columns.

Both read ``DIR/summary.parquet`` (:func:`pwflow.sweeps.read_summary`); matplotlib is imported
when a figure is drawn.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import NUMERIC_COLUMNS, PHASE_Y_AXES
from .run import Outcome, build_dataset
from .spec import AXES, DatasetSpec

__all__ = ["phase_diagram", "sweep_plot", "Threshold", "thresholds", "ETA5",
           "PHASE_Y_AXES", "NUMERIC_COLUMNS"]

#: η₅ ≈ 0.0977: Assumption 5 holds on the whole Assumption 3 box exactly for η < η₅
#: (docs/lemma8.md, certified by :func:`proofs_checks.lemma8.find_eta_threshold`).
ETA5 = 0.0976541304678381
#: Theorem 2's bound on η (Assumption 3).
ETA_THEOREM2 = 1 / 6

LOG_AXES = ("scale", "width", "lr", "n", "t_max")
ORDER = (Outcome.GLOBAL, Outcome.SPURIOUS, Outcome.NOT_CONVERGED, Outcome.FAILED)


@dataclass(frozen=True)
class Threshold:
    """A theory threshold on an axis: value, label, and why it is missing when ``value`` is None."""

    axis: str
    value: float | None
    label: str
    note: str = ""


def _dataset_of(row: dict) -> DatasetSpec:
    return DatasetSpec(row["dataset"]) if row["dataset"] in ("three-points", "assumption3",
                                                             "stewart") else None


def lambda_star_of(row: dict, alpha0: float = 0.5, epsilon: float = 0.25) -> float | str:
    """``λ*_{α₀}`` (Eq. (22)) of a row's dataset (:mod:`proofs_checks.constants`), or why not."""
    from proofs_checks.constants import Undefined, lambda_star
    from proofs_checks.faces import geometry

    ds = _dataset_of(row)
    if ds is None:
        return "dataset file: not rebuilt for the figure"
    data = build_dataset(ds, row["seed"], row.get("eta"), row.get("n"))
    v = lambda_star(geometry(data, row.get("loss") or "square", row["gamma"]), alpha0, epsilon)
    return v.reason if isinstance(v, Undefined) else float(v)


def thresholds(rows: list[dict], x: str, y: str) -> list[Threshold]:
    """Theory thresholds drawable on a phase diagram of ``rows`` (``x``, ``y`` axes)."""
    out = []
    for axis in (x, y):
        if axis == "scale":
            vals, reasons = [], set()
            for key in sorted({(r["dataset"], r["seed"], r.get("eta"), r.get("n"), r["gamma"],
                                r.get("loss")) for r in rows}, key=str):
                r = dict(zip(("dataset", "seed", "eta", "n", "gamma", "loss"), key, strict=True))
                v = lambda_star_of(r)
                (vals.append(v) if isinstance(v, float) else reasons.add(v))
            if vals:
                sym = "$\\lambda^*_{\\alpha_0}$"
                label = (f"{sym} = {np.median(vals):.3g}" if len(set(vals)) == 1
                         else f"{sym} median {np.median(vals):.3g} "
                              f"({min(vals):.2g}–{max(vals):.2g})")
                out.append(Threshold("scale", float(np.median(vals)), label,
                                     "Eq. (22), α₀ = 0.5, ε = 0.25"))
            else:
                out.append(Threshold("scale", None, "λ*_α₀ undefined",
                                     "; ".join(sorted(reasons))))
            out.append(Threshold("scale", None, "λ̃ of Theorem 2",
                                 "a Θ(1) constant the paper does not give: not drawn"))
        if axis == "eta":
            out.append(Threshold("eta", ETA5, "η₅ ≈ 0.0977 (Assumption 5)", "docs/lemma8.md"))
            out.append(Threshold("eta", ETA_THEOREM2, "η = 1/6 (Theorem 2)", "Assumption 3"))
    return out


def _edges(vals: list, log: bool) -> np.ndarray:
    v = np.asarray(vals, float)
    t = np.log10(v) if log else v
    if t.size == 1:
        e = np.array([t[0] - 0.5, t[0] + 0.5])
    else:
        mid = (t[1:] + t[:-1]) / 2
        e = np.concatenate([[t[0] - (mid[0] - t[0])], mid, [t[-1] + (t[-1] - mid[-1])]])
    return 10**e if log else e


def _is_numeric(vals: list) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals)


def _use_log(axis: str, vals: list) -> bool:
    return axis in LOG_AXES and _is_numeric(vals) and all(v > 0 for v in vals)


def _check_axis(axis: str, rows: list[dict], opt: str) -> list:
    if axis not in AXES:
        raise ValueError(f"argument {opt}: unknown axis {axis!r}; allowed: {', '.join(AXES)}")
    vals = sorted({r[axis] for r in rows if r.get(axis) is not None}, key=_sort_key)
    if not vals:
        raise ValueError(f"argument {opt}: the sweep has no values of {axis!r}")
    return vals


def _sort_key(v):
    return (0, v, "") if isinstance(v, (int, float)) else (1, 0, str(v))


def phase_cells(rows: list[dict], x: str, y: str) -> dict[tuple, Counter]:
    """Outcome counts per ``(x value, y value)`` cell (over seeds and any other axis)."""
    cells: dict[tuple, Counter] = defaultdict(Counter)
    for r in rows:
        cells[(r[x], r[y])][r["outcome"]] += 1
    return cells


def phase_diagram(rows: list[dict], x: str, y: str, out: str | Path,
                  title: str | None = None) -> Path:
    """Heat maps of the fraction of runs per outcome in each ``(x, y)`` cell, with counts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if x == y:
        raise ValueError(f"arguments --x and --y must differ, both are {x!r}")
    xs, ys = _check_axis(x, rows, "--x"), _check_axis(y, rows, "--y")
    cells = phase_cells(rows, x, y)
    present = [o for o in ORDER if any(c[str(o)] for c in cells.values())]
    logx, logy = _use_log(x, xs), _use_log(y, ys)
    xe = _edges(xs, logx) if _is_numeric(xs) else np.arange(len(xs) + 1) - 0.5
    ye = _edges(ys, logy) if _is_numeric(ys) else np.arange(len(ys) + 1) - 0.5
    ths = thresholds(rows, x, y)
    fig, axes = plt.subplots(1, len(present), figsize=(4.2 * len(present) + 0.8, 3.6),
                             squeeze=False, constrained_layout=True)
    for ax, outcome in zip(axes[0], present, strict=True):
        frac = np.full((len(ys), len(xs)), np.nan)
        for i, yv in enumerate(ys):
            for j, xv in enumerate(xs):
                c = cells.get((xv, yv))
                if c:
                    total = sum(c.values())
                    frac[i, j] = c[str(outcome)] / total
                    cx = _centre(xe, j, logx)
                    cy = _centre(ye, i, logy)
                    ax.text(cx, cy, f"{c[str(outcome)]}/{total}", ha="center", va="center",
                            fontsize=7, color="w" if frac[i, j] > 0.5 else "k")
        mesh = ax.pcolormesh(xe, ye, frac, vmin=0, vmax=1, cmap="viridis")
        if logx:
            ax.set_xscale("log")
        if logy:
            ax.set_yscale("log")
        if not _is_numeric(xs):
            ax.set_xticks(range(len(xs)), [str(v) for v in xs])
        if not _is_numeric(ys):
            ax.set_yticks(range(len(ys)), [str(v) for v in ys])
        ax.set_xlabel(_label(x))
        ax.set_ylabel(_label(y))
        ax.set_title(f"fraction: {outcome}", fontsize=10)
        _draw_thresholds(ax, ths, x, y)
    fig.colorbar(mesh, ax=axes[0].tolist(), shrink=0.9, label="fraction of runs")
    handles, labels = axes[0][0].get_legend_handles_labels()
    if handles:  # the thresholds, once, below the panels
        fig.legend(handles, labels, loc="outside lower center", ncols=len(handles), fontsize=7,
                   frameon=False)
    notes = "; ".join(f"{t.label}: {t.note}" for t in ths if t.value is None)
    if title or notes:
        fig.suptitle("\n".join(v for v in (title, notes and f"({notes})") if v), fontsize=9)
    out = Path(out)
    fig.savefig(out, dpi=130)
    plt.close(fig)
    return out


def _centre(edges: np.ndarray, i: int, log: bool) -> float:
    return math.sqrt(edges[i] * edges[i + 1]) if log else 0.5 * (edges[i] + edges[i + 1])


def _draw_thresholds(ax, ths: list[Threshold], x: str, y: str) -> None:
    styles = ("--", ":", "-.")
    for k, t in enumerate(th for th in ths if th.value is not None):
        kw = dict(color="tab:red", lw=1.2, ls=styles[k % 3], label=t.label)
        if t.axis == x:
            lo, hi = ax.get_xlim()
            if lo <= t.value <= hi:
                ax.axvline(t.value, **kw)
            else:
                ax.plot([], [], **kw)
                kw["label"] = None
        elif t.axis == y:
            lo, hi = ax.get_ylim()
            if lo <= t.value <= hi:
                ax.axhline(t.value, **kw)
            else:
                ax.plot([], [], **kw)


def _label(axis: str) -> str:
    return {"scale": "scale λ", "width": "width m", "gamma": "γ", "eta": "η", "lr": "lr",
            "t_max": "t_max", "n": "n"}.get(axis, axis)


def sweep_plot(rows: list[dict], y: str, x: str, out: str | Path, hue: str | None = None,
               logy: bool | None = None) -> Path:
    """``y`` (a summary column) against axis ``x``: mean over runs (seeds) with std error bars,
    one line per value of ``hue``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if y not in NUMERIC_COLUMNS:
        raise ValueError(f"argument --y: {y!r} is not a numeric summary column; allowed: "
                         + ", ".join(NUMERIC_COLUMNS))
    xs = _check_axis(x, rows, "--x")
    if not _is_numeric(xs):
        raise ValueError(f"argument --x: axis {x!r} is not numeric")
    hues = _check_axis(hue, rows, "--hue") if hue else [None]
    fig, ax = plt.subplots(figsize=(5.5, 3.8), constrained_layout=True)
    any_point = False
    all_pos = True
    for h in hues:
        mx, my, sy = [], [], []
        for xv in xs:
            vals = [r[y] for r in rows if r[x] == xv and (h is None or r[hue] == h)
                    and r.get(y) is not None and math.isfinite(r[y])]
            if vals:
                mx.append(xv)
                my.append(float(np.mean(vals)))
                sy.append(float(np.std(vals)) if len(vals) > 1 else 0.0)
                all_pos &= min(vals) > 0
        if mx:
            any_point = True
            ax.errorbar(mx, my, yerr=sy, marker="o", ms=3, capsize=3,
                        label=None if h is None else f"{_label(hue)} = {h}")
    if not any_point:
        raise ValueError(f"argument --y: column {y!r} has no finite values in this sweep")
    if _use_log(x, xs):
        ax.set_xscale("log")
    if logy or (logy is None and all_pos and y not in ("status",)):
        ax.set_yscale("log")
    ax.set_xlabel(_label(x))
    ax.set_ylabel(y)
    if hue:
        ax.legend(fontsize=7)
    ax.set_title(f"{y} (mean ± std over seeds)", fontsize=10)
    out = Path(out)
    fig.savefig(out, dpi=130)
    plt.close(fig)
    return out
