"""Run every check of :mod:`proofs_checks.checks` for one configuration and render the results
(terminal table, JSON, Markdown); exit status non-zero if any statement is ``violated``."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass

import numpy as np

from pwflow import theory
from pwflow.data import Dataset
from pwflow.init import Init, make_init
from pwflow.integrator import simulate
from pwflow.trajectory import Trajectory

from . import checks as C
from .checks import CheckResult

#: η₅: below it Assumption 5 holds on the whole Assumption 3 box (docs/lemma8.md, certified).
ETA5 = 0.0976541304678381


@dataclass(frozen=True)
class Config:
    """Parameters of one verification run.

    ``epsilon`` ∈ (0, 1/3) and ``alpha0`` of Theorem 1; ``eps2``, ``eps3``, ``delta_prime`` of
    Lemmas 5–6; ``t_max`` the horizon (``None``: ``max(40 τ, 3000)``); ``n_grid`` snapshots on
    ``[0, τ]`` and on ``[τ, t_max]`` each; ``conv_tol`` for the finite-horizon limit check;
    ``certify_lemma8``: ``η`` of the Assumption 3 box to certify Lemma 8 over (slow, ~10 s).
    """

    epsilon: float = 0.25
    alpha0: float = 0.5
    eps2: float = 0.05
    eps3: float = 0.05
    delta_prime: float = 0.05
    t_max: float | None = None
    n_grid: int = 200
    conv_tol: float = 1e-6
    gamma: float = 0.0
    loss: str = "square"
    certify_lemma8: float | None = None
    section4_seeds: tuple[int, ...] = (0,)
    section4_eta: float = 0.05
    section4_scale: float = 1e-6

    def __post_init__(self) -> None:
        C._check_eps(self.epsilon)
        if not 0 < self.alpha0 <= 1:
            raise ValueError(f"alpha0 must be in (0, 1], got {self.alpha0!r}")
        if self.n_grid < 2:
            raise ValueError(f"n_grid must be >= 2, got {self.n_grid!r}")
        if not 0 < self.section4_eta < ETA5:
            raise ValueError(f"section4_eta must be in (0, η₅ = {ETA5}) so that Assumption 5 "
                             f"holds on the whole box, got {self.section4_eta!r}")


def time_grid(tau: float, t_max: float, n_grid: int) -> np.ndarray:
    """Snapshots: uniform on ``[0, τ]`` (Theorem 1 (i) is checked there), geometric and
    uniform on ``[τ, t_max]`` (phases 2–3)."""
    if not 0 < tau < t_max:
        raise ValueError(f"t_max (--t-max) must exceed τ = {tau:.6g} > 0 (Theorem 1 is checked "
                         f"on snapshots of [0, τ]), got t_max={t_max!r}")
    a = np.linspace(0.0, tau, n_grid)
    b = tau + np.geomspace(1e-3, t_max - tau, n_grid)
    c = np.linspace(tau, t_max, n_grid)  # uniform too: phase 3 decays exponentially
    # τ + (t_max − τ) can round one ulp past t_max, which simulate refuses in t_eval
    return np.unique(np.minimum(np.concatenate([a, b, c]), t_max))


def run_trajectory(data: Dataset, init: Init, geo: C.Geometry, cfg: Config,
                   progress: bool = False) -> Trajectory:
    """The exact flow with snapshots on :func:`time_grid`."""
    tau = C.tau_of(init.scale, cfg.epsilon, geo.D_max)
    t_max = cfg.t_max if cfg.t_max is not None else max(40 * tau, 3000.0)
    return simulate(data, init, t_max, gamma=cfg.gamma, loss=cfg.loss,
                    t_eval=time_grid(tau, t_max, cfg.n_grid), progress=progress)


def dataset_checks(data: Dataset, cfg: Config, geo: C.Geometry | None) -> list[CheckResult]:
    """Lemmas 2, 3, 9, 10, 14 and 8 on the dataset alone."""
    out = [C.check_lemma2(data, cfg.loss, cfg.gamma, geo)]
    if geo is None:
        for s in ("Lemma 3", "Lemma 9", "Lemma 10", "Lemma 14"):
            out.append(CheckResult(s, {}, "not checked", note="face enumeration needs d = 2"))
        return out
    out += [C.check_lemma3(data, cfg.loss, cfg.gamma, geo), C.check_lemma9(data, geo=geo),
            C.check_lemma10(data, geo=geo), C.check_lemma14(geo), C.check_lemma8(data)]
    if cfg.certify_lemma8 is not None:
        out.append(C.check_lemma8_box(cfg.certify_lemma8))
    return out


#: Statements of Section 4 / Appendix F checked on the phases.
SECTION4 = ("Lemma 4", "Lemma 5", "Lemma 6", "Lemma 7", "Lemma 15", "Lemma 16", "Lemma 17",
            "Lemma 18", "Lemma 19", "Lemma 20", "Lemma 21", "Lemma 22", "Lemma 23", "Lemma 24",
            "Theorem 2", "Theorem 4")


def lemma1_independent(traj: Trajectory, data: Dataset, geo: C.Geometry, lam: float,
                       cfg: Config) -> CheckResult:
    """Lemma 1 on gradient descent from the trajectory's initial point at three step sizes on
    ``[0, min(4τ, T)]`` (:func:`checks.check_lemma1_gd`), independent of the integrator."""
    from pwflow.init import from_arrays

    t_end = float(min(4 * C.tau_of(lam, cfg.epsilon, geo.D_max), traj.t[-1]))
    runs = C.lemma1_gd_runs(data, from_arrays(traj.W[0], traj.a[0]), t_end,
                            gamma=cfg.gamma, loss=cfg.loss)
    return C.check_lemma1_gd(runs)


def trajectory_checks(traj: Trajectory, data: Dataset, geo: C.Geometry, lam: float,
                      cfg: Config, section4_only: bool = False) -> list[CheckResult]:
    """Lemma 1, 11–13, Theorems 1 and 3, Conditions 1–2 and the Section 4 phases (only the
    latter with ``section4_only``)."""
    e, a0 = cfg.epsilon, cfg.alpha0
    out = [] if section4_only else [
           C.check_lemma1(traj), lemma1_independent(traj, data, geo, lam, cfg),
           C.check_condition(traj, a0, 1), C.check_condition(traj, a0, 2),
           C.check_theorem1_i(traj, geo, lam, e, a0),
           C.check_theorem1_i(traj, geo, lam, e, 1.0, statement="Theorem 3 (i)"),
           *C.check_theorem1_ii(traj, geo, lam, e, a0),
           *C.check_theorem1_ii(traj, geo, lam, e, a0, theorem3=True),
           C.check_lemma11(traj, geo), C.check_lemma12(traj, geo, lam, e),
           C.check_lemma13(traj, geo, lam, e)]
    sec4 = traj.loss_name == "square" and traj.gamma == 0.0
    if not sec4:
        for s in SECTION4:
            out.append(CheckResult(s, {"square loss, ReLU": False},
                                   "hypotheses unmet", note="Section 4 / Appendix F setting only"))
        return out
    if theory.beta_star(traj.X, traj.y) is None:  # rank X < d: Theorem 2's β* not unique
        for s in SECTION4:
            out.append(CheckResult(s, {"X of full column rank (β* unique)": False},
                                   "hypotheses unmet",
                                   note="Section 4 needs the unique β* of Theorem 2"))
        return out
    ph = C.locate_phases(traj, geo, lam, e, cfg.eps2, cfg.eps3, cfg.delta_prime)
    if not ph.I.any():
        for s in SECTION4:
            out.append(CheckResult(s, {}, "not applicable", note="the set 𝓘 is empty"))
        return out
    args = (traj, data, geo, ph, lam, e, a0)
    out += [*C.check_lemma4(*args), *C.check_lemma15_16(*args), *C.check_lemma5(*args),
            *C.check_lemma6(*args), *C.check_lemma17_18(*args), *C.check_phase3(*args),
            C.check_lemma7(*args, conv_tol=cfg.conv_tol),
            C.check_lemma7(*args, conv_tol=cfg.conv_tol, statement="Theorem 2"),
            C.check_lemma7(*args, conv_tol=cfg.conv_tol, statement="Theorem 4")]
    return out


def run_all(data: Dataset, init: Init, cfg: Config = Config(),
            progress: bool = False) -> tuple[list[CheckResult], Trajectory | None]:
    """Every check for ``(data, init, cfg)``; returns the results and the trajectory."""
    try:
        geo = C.geometry(data, cfg.loss, cfg.gamma)
    except ValueError:
        geo = None
    results = dataset_checks(data, cfg, geo)
    if geo is None:
        return results, None
    traj = run_trajectory(data, init, geo, cfg, progress)
    results += trajectory_checks(traj, data, geo, init.scale, cfg)
    if _needs_section4_data(data, cfg):
        results = [r for r in results if r.statement.split(" (")[0] not in SECTION4]
        for seed in cfg.section4_seeds:
            results += section4_on_assumption3(init, cfg, seed)
    return sort_results(results), traj


def _needs_section4_data(data: Dataset, cfg: Config) -> bool:
    """Section 4 rows move to Assumption 3 data when this dataset fails Assumptions 4–6 (in
    the square-loss ReLU setting of Section 4)."""
    if cfg.loss != "square" or cfg.gamma != 0.0 or data.X.shape[1] != 2:
        return False
    return not all(C.assumptions456(data).values())


def section4_on_assumption3(init: Init, cfg: Config, seed: int) -> list[CheckResult]:
    """The Section 4 / Appendix F rows on ``assumption3(cfg.section4_eta, seed)`` (η < η₅:
    Assumptions 4–6 hold, checked and listed in each row's hypotheses), same width, init kind
    and init seed, scale ``cfg.section4_scale``; ``where`` names the data used."""
    from pwflow.data import assumption3

    data = assumption3(cfg.section4_eta, seed=seed)
    geo = C.geometry(data, "square", 0.0)
    lam = cfg.section4_scale
    init3 = make_init(init.kind, init.m, data.d, lam, init.seed or 0)
    t_max = None if cfg.t_max is None else max(cfg.t_max, 200.0)  # phases end near t ≈ 25
    traj = run_trajectory(data, init3, geo, dataclasses.replace(cfg, t_max=t_max))
    tag = f"[assumption3 η={cfg.section4_eta:g} seed {seed}, λ={lam:g}] "
    rows = trajectory_checks(traj, data, geo, lam, cfg, section4_only=True)
    return [dataclasses.replace(r, where=tag + r.where) for r in rows]


def _key(r: CheckResult) -> tuple:
    kind, _, rest = r.statement.partition(" ")
    num = rest.split(" ")[0]
    order = {"Lemma": 1, "Theorem": 2, "Condition": 0}.get(kind, 3)
    return order, int(num) if num.isdigit() else 99, r.statement


def sort_results(results: list[CheckResult]) -> list[CheckResult]:
    """Conditions, then lemmas by number, then theorems."""
    return sorted(results, key=_key)


def make_init_for(kind: str, width: int, d: int, scale: float, seed: int) -> Init:
    """Initialisation by name (``balanced``, ``dominated``, ``unbalanced``)."""
    return make_init(kind, width, d, scale, seed)


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------


def _num(x: float | None) -> str:
    if x is None:
        return "—"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:.4g}"


COLUMNS = ("statement", "kind", "verdict", "measured", "bound", "margin", "where")


def rows(results: list[CheckResult]) -> list[list[str]]:
    """Table rows (strings) in :data:`COLUMNS` order."""
    return [[r.statement, r.kind.value, r.verdict.value, _num(r.measured), _num(r.bound),
             _num(r.margin), r.where] for r in results]


def render_table(results: list[CheckResult], width: int = 60, header: bool = True) -> str:
    """Plain-text table for the terminal (``where`` truncated to ``width`` characters),
    preceded by the header counts (:func:`checks.render_header`) unless ``header=False``;
    ``vacuous`` and ``by construction`` rows are followed by their ``detail``."""
    rs = [row[:-1] + [row[-1][:width]] for row in rows(results)]
    w = [max(len(c), *(len(r[i]) for r in rs)) if rs else len(c) for i, c in enumerate(COLUMNS)]
    line = "  ".join(c.ljust(w[i]) for i, c in enumerate(COLUMNS))
    out = ([C.render_header(results), ""] if header else []) + [line, "-" * len(line)]
    for r, res in zip(rs, results, strict=True):
        out.append("  ".join(r[i].ljust(w[i]) for i in range(len(COLUMNS))))
        if res.detail:
            out.append("    ↳ " + res.detail)
    return "\n".join(out)


def render_markdown(results: list[CheckResult]) -> str:
    """Header counts, then a Markdown table with ``note`` and ``detail`` columns."""
    counts = C.header_counts(results)
    top = ["| kind | " + " | ".join(C.VERDICTS) + " |", "|" + "---|" * (len(C.VERDICTS) + 1)]
    top += ["| " + k + " | " + " | ".join(str(c[v]) for v in C.VERDICTS) + " |"
            for k, c in counts.items()]
    head = "| " + " | ".join(COLUMNS + ("note", "detail")) + " |"
    sep = "|" + "---|" * (len(COLUMNS) + 2)
    body = ["| " + " | ".join(c.replace("|", "\\|") for c in row + [r.note, r.detail]) + " |"
            for row, r in zip(rows(results), results, strict=True)]
    return "\n".join([*top, "", head, sep, *body])


def render_json(results: list[CheckResult], meta: dict | None = None) -> str:
    """JSON document ``{"meta": ..., "results": [...]}`` (non-finite floats as strings)."""
    def clean(v):
        if isinstance(v, float) and not math.isfinite(v):
            return str(v)
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        return v
    return json.dumps({"meta": meta or {}, "counts": C.header_counts(results),
                       "results": [clean(r.to_dict()) for r in results]},
                      indent=2, ensure_ascii=False)


def exit_status(results: list[CheckResult]) -> int:
    """1 if any statement is ``violated``, else 0."""
    return int(any(r.verdict == "violated" for r in results))
