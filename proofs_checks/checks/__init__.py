"""One numerical check per statement of Boursier & Flammarion (Lemmas 1–24, Theorems 1–4,
Conditions 1–2), on exact trajectories of :func:`pwflow.simulate` (and, for the independent
Lemma 1 check, :func:`pwflow.gd.gradient_descent`), split by the paper's sections:

* :mod:`.results` — :class:`CheckResult`, :class:`Verdict`, :class:`Kind`, header counts;
* :mod:`.geometry` — the activation-cone geometry of ``D(w, 0)`` (Appendix D.1) and
  trajectory helpers, Conditions 1 and 2;
* :mod:`.dataset` — statements on the data alone: Lemmas 2, 3, 8, 9, 10, 14;
* :mod:`.early` — the early phase (Section 3, Appendices C–E): Lemma 1, Theorems 1 and 3,
  Lemmas 11–13;
* :mod:`.phases` — Section 4.1 phases 1–2 (Appendix F.1–F.3): ``τ_2``, ``τ_3``, Lemmas 4–6,
  15–18;
* :mod:`.late` — phase 3 (Appendix F.4): Lemma 7, Theorems 2 and 4, Lemmas 19–24.

The formulas shared with ``pwflow`` (``τ``, ``β*``, ``D_max``, ``𝒦``, Assumption 3's ``η``)
live in :mod:`pwflow.theory`.  Readings of the paper: ``docs/paper-readings.md``.
"""

from .dataset import (  # noqa: F401
    assumption1,
    assumptions456,
    check_lemma2,
    check_lemma3,
    check_lemma8,
    check_lemma8_box,
    check_lemma9,
    check_lemma10,
    check_lemma14,
    in_assumption3,
    lemma12_margin,
)
from .early import (  # noqa: F401
    GD_ROUNDOFF,
    _alignment_at_tau,
    _eq4,
    _theorem1_hyp,
    alignment_result,
    balancedness_drift,
    check_condition,
    check_lemma1,
    check_lemma1_gd,
    check_lemma11,
    check_lemma12,
    check_lemma13,
    check_theorem1_i,
    check_theorem1_ii,
    lemma1_gd_runs,
    t2_bound,
    vacuity,
)
from .geometry import (  # noqa: F401
    Face,
    Geometry,
    _check_eps,
    _D_by_pattern,
    _index_at,
    _outputs,
    _pattern_of,
    _r0,
    _residual,
    condition1,
    condition1_point2,
    condition2_point1,
    geometry,
    tau_of,
)
from .late import (  # noqa: F401
    EPS3_GRID,
    O_TERM_FACTOR,
    _decay_fit,
    _min_norm_grad2,
    check_lemma7,
    check_phase3,
    eps3_quantities,
    eps3_sweep_rows,
    lemma21_result,
    lemma22_result,
    lemma24_result,
    phase3_series,
)
from .phases import (  # noqa: F401
    Phases,
    _first_time,
    _sec4_hyp,
    _tau3_trigger,
    _window,
    check_lemma4,
    check_lemma5,
    check_lemma6,
    check_lemma15_16,
    check_lemma17_18,
    locate_phases,
    paper_tau2,
)
from .results import (  # noqa: F401
    VERDICTS,
    ZERO_TOL,
    CheckResult,
    Kind,
    Verdict,
    _result,
    _verdict,
    header_counts,
    render_header,
)
