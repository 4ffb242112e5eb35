"""One result type for every check: :class:`CheckResult` with a :class:`Verdict`.

Two kinds of verdict (:class:`Kind`):

* **literal** — at the given ``λ``, ``m`` and data, with the paper's explicit constants, does the
  measured quantity satisfy the stated inequality;
* **asymptotic** — for ``O(·)``, ``Θ(·)`` and rate claims, a λ-sweep whose fitted exponent (with
  its confidence interval and goodness of fit) is compared with the claim
  (:mod:`proofs_checks.sweeps`).

The verdicts (:class:`Verdict`):

* ``holds`` — every checkable hypothesis holds and the checked inequality holds (and is not
  implied by a trivial a-priori bound);
* ``violated`` — every checkable hypothesis holds and the checked inequality fails;
* ``vacuous`` — the bound exceeds a trivial a-priori bound (``detail`` says which and by how
  much), so only the trivial bound could fail; never counted as ``holds``;
* ``by construction`` — the quantity holds because of how the package computes the trajectory
  or the phase times (a projection, a stopping rule), not because of the flow; each such row
  has an independent row that can fail;
* ``hypotheses unmet`` — some checkable hypothesis fails (the measurement is still reported);
* ``not checked`` — no measurement at this configuration can settle it (the reason is in
  ``note``);
* ``not applicable`` — the statement does not concern this input (no neuron satisfies the
  condition, a phase time is not reached within the horizon).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import Enum
from typing import Any, Iterable

__all__ = ["Verdict", "Kind", "CheckResult", "VERDICTS", "ZERO_TOL", "header_counts",
           "render_header"]

#: Relative tolerance for "= 0" tests on exactly computed quantities (inner products, norms).
ZERO_TOL = 1e-9


class Verdict(str, Enum):
    """The verdict of one check (see the module docstring)."""

    HOLDS = "holds"
    VIOLATED = "violated"
    VACUOUS = "vacuous"
    BY_CONSTRUCTION = "by construction"
    HYPOTHESES_UNMET = "hypotheses unmet"
    NOT_CHECKED = "not checked"
    NOT_APPLICABLE = "not applicable"

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)


class Kind(str, Enum):
    """Literal (one configuration, explicit constants) or asymptotic (λ-sweep fit)."""

    LITERAL = "literal"
    ASYMPTOTIC = "asymptotic"

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)


#: Every verdict, in the order of the header counts.
VERDICTS: tuple[str, ...] = tuple(v.value for v in Verdict)


@dataclass(frozen=True)
class CheckResult:
    """Outcome of one check.

    Attributes
    ----------
    statement : str
        ``"Lemma 1"``, ``"Theorem 1 (ii) alignment"``, ...
    hypotheses : dict of str to bool
        Each checkable hypothesis and whether it holds on this input.
    verdict : Verdict
        One of :class:`Verdict` (a plain string is converted; an unknown one raises).
    measured, bound : float or None
        The measured quantity (the worst case over neurons and times) and the bound it is
        compared with.
    margin : float or None
        Signed margin, positive when the inequality holds.
    where : str
        Where the worst case occurs (neuron, time, face).
    note : str
        What exactly was checked.
    kind : Kind
        ``literal`` or ``asymptotic``.
    detail : str
        For ``vacuous``: the trivial bound and the factor by which the stated bound exceeds it;
        for ``by construction``: the mechanism and the name of the independent row.
    """

    statement: str
    hypotheses: dict[str, bool]
    verdict: Verdict
    measured: float | None = None
    bound: float | None = None
    margin: float | None = None
    where: str = ""
    note: str = ""
    kind: Kind = Kind.LITERAL
    detail: str = ""

    def __post_init__(self) -> None:
        try:
            v = Verdict(self.verdict)
        except ValueError:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}") from None
        try:
            k = Kind(self.kind)
        except ValueError:
            raise ValueError(f"kind must be 'literal' or 'asymptotic', got {self.kind!r}") from None
        object.__setattr__(self, "verdict", v)
        object.__setattr__(self, "kind", k)
        object.__setattr__(self, "hypotheses", {str(a): bool(b)
                                                for a, b in dict(self.hypotheses).items()})
        for name in ("measured", "bound", "margin"):
            x = getattr(self, name)
            object.__setattr__(self, name, None if x is None else float(x))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (floats, bools, strings only)."""
        d = dataclasses.asdict(self)
        d["verdict"] = self.verdict.value
        d["kind"] = self.kind.value
        return d


def _verdict(hyp: dict[str, bool], ok: bool) -> Verdict:
    if not all(hyp.values()):
        return Verdict.HYPOTHESES_UNMET
    return Verdict.HOLDS if ok else Verdict.VIOLATED


def _result(statement, hyp, ok, measured=None, bound=None, margin=None, where="", note="",
            kind=Kind.LITERAL, detail=""):
    """A literal result: ``holds``/``violated`` on ``ok`` or ``hypotheses unmet``."""
    return CheckResult(statement, hyp, _verdict(hyp, ok), measured, bound, margin, where, note,
                       kind, detail)


def header_counts(results: Iterable[CheckResult]) -> dict[str, dict[str, int]]:
    """``{kind: {verdict: count}}`` over every verdict of :class:`Verdict` (zeros included)."""
    out = {k.value: {v.value: 0 for v in Verdict} for k in Kind}
    for r in results:
        out[r.kind.value][r.verdict.value] += 1
    return out


def render_header(results: Iterable[CheckResult]) -> str:
    """Two lines, ``literal: holds 12 · violated 1 · …`` and ``asymptotic: …``."""
    counts = header_counts(results)
    return "\n".join(f"{k:<10}: " + " · ".join(f"{v} {n}" for v, n in c.items())
                     for k, c in counts.items())
