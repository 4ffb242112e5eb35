"""Tests of proofs_checks.fits (CI, goodness of fit, verdict rule), the sweep's exclusion
rules (proofs_checks.sweeps) and pwflow.theory (τ, β*, D_max, 𝒦, Assumption 3's η)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import pwflow.data as D
from proofs_checks import fits as F
from proofs_checks import lemma8 as L8
from proofs_checks import sweeps as S
from proofs_checks.constants import kappa_set
from proofs_checks.faces import geometry
from pwflow import theory as T


# --------------------------------------------------------------------------------- fits
def _power(lams, p, noise=0.02, seed=0):
    rng = np.random.default_rng(seed)
    return 2.0 * lams**p * np.exp(noise * rng.standard_normal(lams.size))


def test_fit_recovers_exponent_with_ci():
    lams = np.repeat(np.geomspace(1e-10, 1e-5, 6), 3)
    fit = S.fit_exponent(lams, _power(lams, 0.4))
    assert abs(fit.slope - 0.4) < 4 * fit.se and fit.ci[1] - fit.ci[0] < 0.02
    assert fit.gof and fit.n == 18
    assert F.rate_verdict(fit, 0.25)[0] == "holds"
    assert F.rate_verdict(fit, 0.6)[0] == "violated"  # a claim the data contradict
    with pytest.raises(ValueError, match="at least 3"):
        S.fit_exponent([1e-3, 1e-4], [1.0, 2.0])


def test_non_power_law_fails_goodness_of_fit():
    """Values like the old Theorem 1 sweep (0.046 → 0.96 over four decades, bending): not a
    straight line in log–log, so neither ``holds`` nor ``violated``."""
    lams = np.geomspace(1e-9, 1e-5, 5)
    vals = np.array([0.046, 0.05, 0.08, 0.4, 0.96])
    fit = S.fit_exponent(lams, vals)
    assert not fit.gof and "slope changes" in fit.why
    assert F.rate_verdict(fit, 0.25)[0] == "not checked"


def test_flat_data_violate_a_positive_rate():
    """A quantity that does not decay (slope 0, R² ≈ 0) is a clean straight line: the claim
    O(λ^0.25) is ``violated``, O(1) ``holds`` (tight claims within RATE_TOL)."""
    lams = np.repeat(np.geomspace(1e-10, 1e-5, 6), 3)
    fit = S.fit_exponent(lams, _power(lams, 0.0, noise=0.01))
    assert fit.gof
    assert F.rate_verdict(fit, 0.25)[0] == "violated"
    assert F.rate_verdict(fit, 0.0)[0] == "holds"


def _point(lam, seed, mis, transit, nD=None):
    m = len(mis)
    per = {"lemma4": np.asarray(mis, float), "theorem1": np.asarray(mis, float),
           "nD": np.ones(m) if nD is None else np.asarray(nD, float),
           "transit": np.asarray(transit, bool)}
    return S.Point(lam, seed, {"lemma4": math.nan, "theorem1": math.nan},
                   {"lemma4": "", "theorem1": ""}, per, 0.0)


def test_transit_rule_follows_the_same_neurons():
    """Neuron 1 is in transit at the largest λ: it is dropped at every λ, so the max is taken
    over neuron 0 only and the fitted exponent is its own (0.5), not the transit's 0."""
    lams = [1e-5, 1e-7, 1e-9]
    pts = [_point(lam, 0, [lam**0.5, 0.3], [False, lam == 1e-5]) for lam in lams]
    out, q = S._alignment_values("lemma4", pts, 1.0, 0.25)
    vals = sorted(p.values["lemma4"] for p in out)
    np.testing.assert_allclose(vals, sorted(lam**0.5 for lam in lams))
    row = S._rate_row("lemma4", pts, 0.25, 1.0)
    assert row.verdict == "holds" and abs(row.measured - 0.5) < 1e-9


@pytest.mark.parametrize("key,p,expect", [
    ("lemma4", 0.1, "violated"),  # misalignment O(λ^0.1) against the claimed O(λ^ε), ε = 0.25
    ("lemma4", 0.5, "holds"),
    ("lemma6_3", -0.5, "violated"),  # |a^{τ_3}|/|a^0| grows like λ^{−0.5}, claim λ^{−ε}
    ("lemma6_3", 0.0, "holds"),
])
def test_sweep_rate_rows_can_fail(key, p, expect):
    """A sweep row (:func:`sweeps._rate_row`) fed points of a power law ``λ^p`` shallower than
    its claim is ``violated``; a steep enough one ``holds`` (3 seeds, seeded noise)."""
    lams = np.geomspace(1e-10, 1e-5, 6)
    pts = []
    for seed in range(3):
        vals = _power(lams, p, seed=seed)
        for lam, v in zip(lams, vals, strict=True):
            if key == "lemma4":
                pts.append(_point(lam, seed, [v], [False]))
            else:
                pts.append(S.Point(lam, seed, {key: v}, {key: ""}, {}, 0.0))
    row = S._rate_row(key, pts, 0.25, 1.0)
    assert row.verdict == expect, row
    assert abs(row.measured - p) < 0.05


@pytest.mark.parametrize("rates, expect", [
    ((-0.5, 0.8, 0.9), "violated"),  # one run's loss gap grows: no rate a > 0 can hold
    ((0.0, 0.8, 0.9), "violated"),  # nor a gap that does not decay
    ((0.1, 0.8, 0.9), "not checked"),  # decays, below σ_min‖β*‖/2 (a's lower bound not known here)
    ((0.3, 0.8, 0.9), "holds"),
])
def test_lemma22_sweep_row_can_fail(rates, expect):
    """The sweep's Lemma 22 row (:func:`sweeps._lemma22_row`, ``a ≤ σ_min‖β*‖/2 = 0.25``)
    is ``violated`` where a run's tail rate is not positive (before session 34 it could only
    say ``holds`` or ``not checked``)."""
    pts = [S.Point(lam, 0, {"lemma22": r}, {"lemma22": ""}, {}, 0.0)
           for lam, r in zip((1e-6, 1e-7, 1e-8), rates, strict=True)]
    row = S._lemma22_row(pts, 0.25)
    assert row.verdict == expect, row
    assert row.measured == min(rates)


def test_machine_precision_rule_excludes_points():
    lams = [1e-5, 1e-7, 1e-9, 1e-11]
    pts = [_point(lam, 0, [max(lam**0.5, 1e-17)], [False]) for lam in lams]
    pts[-1] = _point(1e-11, 0, [1e-17], [False])
    row = S._rate_row("lemma4", pts, 0.25, 1.0)
    assert "1 machine precision" in row.where and row.verdict == "holds"


# --------------------------------------------------------------------------------- theory
def test_tau_is_the_paper_formula_and_validates():
    assert T.tau(1e-3, 0.25, 0.5) == pytest.approx(-0.25 * math.log(1e-3) / 0.5, rel=1e-15)
    for bad in ({"lam": 1.0}, {"epsilon": 0.4}, {"D_max": 0.0}):
        kw = {"lam": 1e-3, "epsilon": 0.25, "D_max": 0.5} | bad
        with pytest.raises(ValueError, match=next(iter(bad))):
            T.tau(**kw)


def test_beta_star_and_D_max():
    X = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    y = np.array([1.0, 2.0, 0.5])
    np.testing.assert_allclose(T.beta_star(X, y), np.linalg.lstsq(X, y, rcond=None)[0])
    assert T.beta_star(np.array([[1.0, 1.0], [2.0, 2.0]]), np.ones(2)) is None
    assert T.D_max([np.array([3.0, 4.0]), np.zeros(2)]) == 5.0
    with pytest.raises(ValueError, match="D_faces"):
        T.D_max([])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kappa_set_one_convention(seed):
    """𝒦 is 0-based everywhere: the face enumeration, the brute definition in lemma8 and the
    paper's {1, 3} shifted by one on Assumption 3 data."""
    data = D.assumption3(0.05, seed=seed)
    assert kappa_set(geometry(data)) == sorted(L8.kappa_set(data)) == [0, 2]


def test_assumption3_eta():
    for seed in range(3):
        data = D.assumption3(0.05, seed=seed)
        assert T.assumption3_eta(data.X, data.y) <= 0.05
    three = D.three_points()
    assert T.assumption3_eta(three.X, three.y) == math.inf or \
        T.assumption3_eta(three.X, three.y) > 1 / 6
