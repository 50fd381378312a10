"""Which causal question each estimate answers.

Every strategy answers a different question. Four parts define it (Hernán &
Robins 2016; ICH E9(R1) 2019; the TARGET guideline 2025):

* **population** — in whom: everyone at time zero, those alive (and
  event-free) at a landmark, those eligible at each trial start, the
  treated, the overlap population, the matched treated;
* **contrast** — which treatment strategies are compared: ever vs never
  treated (*not a causal contrast*: it classifies patients by their future),
  treated by L vs not yet, start now vs not now (intention to treat), start
  now vs never (per protocol), treat within a grace period while eligible vs
  never, or the structural (from-treatment-on) conditional hazard ratio;
* **time origin** — where follow-up starts: time zero, the landmark, each
  trial's start;
* **scale** — marginal (population-averaged) or conditional on the
  adjustment set (a Cox coefficient: non-collapsible, so it differs from the
  marginal HR even without confounding).

The design contributes population, contrast and origin
(:meth:`causal_hcc.base.Design.estimand_part`); the adjustment narrows the
population (ATT, ATO, matching) and sets the scale
(:meth:`causal_hcc.base.Adjustment.estimand_part`). The combination is
derived here, never written per pair. Each estimate row carries the short
stable :attr:`Estimand.label` (``estimates.csv`` column ``estimand``);
``results.json`` carries the full object.

References
----------
Hernán MA, Robins JM. Using big data to emulate a target trial when a
randomized trial is not available. Am J Epidemiol 2016;183:758-64.
ICH E9(R1) addendum on estimands and sensitivity analysis in clinical
trials (2019).
Cashin AG et al. Transparent reporting of observational studies emulating a
target trial: the TARGET statement. BMJ 2025;390:e087179.
Suissa S. Immortal time bias in pharmacoepidemiology. Am J Epidemiol
2008;167:492-9.
Daniel RM, Zhang J, Farewell D. Making apples from oranges: comparing
noncollapsible effect estimators and their standard errors after adjustment
for different covariate sets. Biom J 2021;63:528-57.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping

__all__ = ["Estimand", "derive_estimand", "POPULATIONS", "CONTRASTS", "SCALES", "COMPETING_EVENTS",
           "with_competing", "with_loss_weights"]

#: population codes and their meaning (``{L}``, ``{ef}`` filled from the design options)
POPULATIONS: dict[str, str] = {
    "all": "everyone meeting the inclusion criteria at time zero",
    "all_positivity": "everyone at time zero, less covariate levels at which nobody is ever treated",
    "at_risk_L": "patients alive, under follow-up (and event-free, where required) at the landmark",
    "eligible_trial": "patients eligible at each trial start (alive, untreated, event-free where required)",
    "treated": "the treated (those who received treatment in the design's sense)",
    "overlap": "the overlap population (weights e(1-e): patients who could have gone either way)",
    "matched_treated": "the treated who found a match within the caliper",
    "unspecified": "not declared by the component",
}

#: contrast codes and their meaning
CONTRASTS: dict[str, str] = {
    "ever_vs_never": "treated at any time during follow-up vs never treated, classified from time zero "
                     "(not a causal contrast: it conditions on the future and credits immortal time to treatment)",
    "by_L_vs_not_yet": "treated by the landmark L vs not treated by L (usual care afterwards, which may "
                       "include later treatment)",
    "start_now_vs_not_now": "start treatment at the trial start vs do not start now (usual care afterwards): "
                            "intention to treat",
    "start_now_vs_never": "start treatment at the trial start vs never start: per protocol",
    "within_grace_vs_never": "start treatment within the grace period G while eligible vs never start",
    "structural": "being treated vs not yet treated at the same time, from treatment on (the structural, "
                  "conditional hazard ratio of a time-dependent exposure)",
    "msm_treated_vs_untreated": "always treated vs never treated: at each time t, the hazard had everyone been "
                                "treated (and stayed treated) by t over the hazard had nobody been treated by t, "
                                "taken as constant over t and as depending on the treatment history through "
                                "current treatment only (marginal structural Cox model of a sustained treatment; "
                                "Hernán, Brumback & Robins 2000)",
    "unspecified": "not declared by the component",
}

SCALES: dict[str, str] = {
    "marginal": "population-averaged (marginal) effect",
    "conditional": "effect conditional on the adjustment set (a Cox coefficient; non-collapsible)",
}

#: how an estimand treats competing events (Young, Stensrud, Tchetgen Tchetgen & Hernán 2020)
COMPETING_EVENTS: dict[str, str] = {
    "total": "total effect on the cumulative incidence (risk) of the event of interest: competing events are "
             "not prevented, so the effect includes any effect of treatment on the competing events",
    "cause_specific_hazard": "contrast of the cause-specific hazard among those still free of every event: not a "
                             "contrast of risks, and causal only as a controlled direct effect under a hypothetical "
                             "intervention that eliminates the competing events (with no common cause of both "
                             "events left unadjusted)",
    "subdistribution_hazard": "contrast of the subdistribution hazard (Fine-Gray: the risk set keeps those who had "
                              "a competing event): a one-number summary of the total effect on the cumulative "
                              "incidence under proportional subdistribution hazards, not a causal contrast of "
                              "hazards",
}

#: measure -> its treatment of competing events
COMPETING_OF_MEASURE: dict[str, str] = {
    "cif_difference": "total", "cif_ratio": "total", "cause_specific_hr": "cause_specific_hazard",
    "subdistribution_hr": "subdistribution_hazard",
}


@dataclass(frozen=True)
class Estimand:
    """The causal question one estimate answers.

    Attributes
    ----------
    population, contrast : str
        Codes from :data:`POPULATIONS` / :data:`CONTRASTS`; ``params`` fills
        their numbers (landmark, grace, event-free requirement, …).
    origin : str
        ``"time_zero"``, ``"landmark"`` or ``"trial_start"``.
    scale : str
        ``"marginal"`` or ``"conditional"``.
    causal : bool
        False when the contrast is not a causal contrast (ever vs never) or
        the measure is descriptive (Simon–Makuch curve differences).
    params : dict
        Design parameters that define the question (``landmark``, ``grace``,
        ``require_event_free``, ``analysis``, ``grid``, ``window``,
        ``target`` = ATE/ATT/ATO).
    notes : tuple of str
        Caveats attached to the question itself (selection on a
        post-treatment event, confounding by a time-varying state, …).
    """

    population: str
    contrast: str
    origin: str
    scale: str
    causal: bool = True
    params: dict[str, Any] = field(default_factory=dict, compare=True)
    notes: tuple[str, ...] = ()
    #: the event of interest of an outcome with competing events (its code, 1), None otherwise
    cause: int | None = None
    #: how competing events are treated (:data:`COMPETING_EVENTS`), None for an outcome without them
    competing: str | None = None
    #: the competing event codes of the outcome
    competing_codes: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        for what, value, table in (("population", self.population, POPULATIONS),
                                   ("contrast", self.contrast, CONTRASTS), ("scale", self.scale, SCALES)):
            if value not in table:
                raise ValueError(f"unknown estimand {what} {value!r}; expected one of {', '.join(table)}")
        if self.origin not in ("time_zero", "landmark", "trial_start", "unspecified"):
            raise ValueError(f"unknown estimand origin {self.origin!r}")
        if self.competing is not None and self.competing not in COMPETING_EVENTS:
            raise ValueError(f"unknown treatment of competing events {self.competing!r}; expected one of "
                             f"{', '.join(COMPETING_EVENTS)}")

    # -- labels ------------------------------------------------------------------------------
    def _num(self, key: str) -> str:
        v = self.params.get(key)
        return "" if v is None else (f"{v:g}" if isinstance(v, (int, float)) else str(v))

    @property
    def label(self) -> str:
        """Short stable label: ``contrast|population|origin|scale`` with the defining numbers.

        e.g. ``ever_vs_never|all|t0|marginal``,
        ``by_L_vs_not_yet(L=3)|at_risk(L=3,pfs-free)|L|conditional``,
        ``within_grace_vs_never(G=6)|all_positivity|t0|marginal``.
        """
        c = self.contrast
        if c == "by_L_vs_not_yet":
            c += f"(L={self._num('landmark')})"
        elif c == "within_grace_vs_never":
            c += f"(G={self._num('grace')})"
        p = self.population
        ef = self.params.get("require_event_free")
        if p == "at_risk_L":
            p = f"at_risk(L={self._num('landmark')}{',' + ef + '-free' if ef else ''})"
        elif p in ("eligible_trial", "all", "all_positivity") and ef and self.origin != "time_zero":
            p = f"{p}({ef}-free)"
        elif p in ("treated", "overlap", "matched_treated") and self.origin == "landmark":
            p = f"{p}(L={self._num('landmark')})"
        origin = {"time_zero": "t0", "landmark": "L", "trial_start": "trial"}.get(self.origin, self.origin)
        label = f"{c}|{p}|{origin}|{self.scale}"
        if self.competing is not None:   # outcomes with competing events: a fifth part, e.g. cause1:total
            label += f"|cause{self.cause}:{self.competing}"
        return label

    def describe(self) -> str:
        """One sentence in words, for the report."""
        pop = POPULATIONS[self.population]
        if self.population == "at_risk_L":
            ef = self.params.get("require_event_free")
            pop = (f"patients alive and under follow-up{' and ' + ef + '-free' if ef else ''} at "
                   f"L = {self._num('landmark')}")
        contrast = CONTRASTS[self.contrast]
        if self.contrast == "by_L_vs_not_yet":
            contrast = contrast.replace("landmark L", f"landmark L = {self._num('landmark')}")
        if self.contrast == "within_grace_vs_never":
            contrast = contrast.replace("grace period G", f"grace period G = {self._num('grace')}")
        origin = {"time_zero": "from time zero", "landmark": "from the landmark",
                  "trial_start": "from each trial's start"}.get(self.origin, "")
        text = f"{contrast}; in {pop}; {origin}; {SCALES[self.scale]}"
        if self.params.get("loss_to_follow_up") == "ipcw":
            text += ("; had nobody been lost to follow-up (loss weighted by the inverse probability of remaining "
                     "under follow-up given the baseline and time-varying confounders and treatment)")
        if self.competing is not None:
            others = ", ".join(map(str, self.competing_codes)) or "none declared"
            text += (f"; event of interest: cause {self.cause} (competing: {others}); "
                     f"{COMPETING_EVENTS[self.competing]}")
        return text if self.causal else f"{text} [not a causal contrast]"

    def to_dict(self) -> dict[str, Any]:
        d = {"label": self.label, "population": self.population, "contrast": self.contrast,
             "origin": self.origin, "scale": self.scale, "causal": self.causal,
             "params": dict(self.params), "notes": list(self.notes), "description": self.describe()}
        if self.competing is not None:
            d.update({"cause": self.cause, "competing": self.competing,
                      "competing_codes": list(self.competing_codes)})
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Estimand":
        return cls(population=d["population"], contrast=d["contrast"], origin=d["origin"], scale=d["scale"],
                   causal=bool(d.get("causal", True)), params=dict(d.get("params", {})),
                   notes=tuple(d.get("notes", ())), cause=d.get("cause"), competing=d.get("competing"),
                   competing_codes=tuple(d.get("competing_codes", ())))

    def replace(self, **changes: Any) -> "Estimand":
        return dataclasses.replace(self, **changes)


def derive_estimand(design: Any, adjustment: Any, measure: str = "hr", row_strategy: str = "") -> Estimand:
    """The estimand of one estimate row of ``design`` x ``adjustment``.

    Parameters
    ----------
    design, adjustment : Design, Adjustment
        Built components (their options are read).
    measure : str
        The row's measure: differences of curves are population-averaged even
        when the HR of the same adjustment is conditional.
    row_strategy : str
        The row's own strategy label where an adjustment reports several
        models (``paper(univariate)``).
    """
    part = dict(design.estimand_part())
    part.setdefault("params", {})
    part.setdefault("notes", ())
    part.setdefault("causal", True)
    adj = adjustment.estimand_part(measure=measure, row_strategy=row_strategy)
    scale = adj.get("scale", "marginal")
    if part.pop("scale", None) == "conditional" and measure == "hr" and not adj.get("overrides_design_scale"):
        scale = "conditional"  # e.g. the time-varying Cox HR is conditional on the time-varying history
    population = adj.get("population") or part["population"]
    contrast = adj.get("contrast") or part["contrast"]   # a marginal structural model answers its own question
    params = {**part["params"], **adj.get("params", {})}
    notes = tuple(part["notes"]) + tuple(adj.get("notes", ()))
    causal = bool(part["causal"]) and bool(adj.get("causal", True))
    tv = part.pop("conditions_on_time_varying", None)
    if tv and adj.get("uses_design_covariates") and measure == "hr":
        # conditioning on a time-varying confounder that treatment affects (Robins, Hernán & Brumback 2000)
        causal = False
        notes += (f"WRONG ANSWER for the effect of treatment: the Cox model conditions on {tv}, a time-varying "
                  "confounder that treatment itself affects; conditioning on it blocks the part of the effect "
                  "that goes through it and opens collider paths (Robins, Hernán & Brumback 2000); use "
                  "adjustment msm",)
    if measure != "hr" and part.get("descriptive_curves"):
        causal = False
        notes += ("differences of these curves are descriptive, not a causal contrast",)
    return Estimand(population=population, contrast=contrast, origin=part["origin"], scale=scale,
                    causal=causal, params=params, notes=notes)


def with_loss_weights(estimand: Estimand) -> Estimand:
    """``estimand`` for a row whose analysis weighted loss to follow-up (``roles.censored``) by inverse probability
    of censoring weights: the question is asked of a world in which nobody is lost, and the weights make that
    explicit (the label is unchanged: every survival contrast targets follow-up without loss; IPCW changes the
    assumption under which it is identified, from loss independent of the outcome to loss independent of it given
    the measured confounders). Robins & Finkelstein 2000; Hernán & Robins, What If, ch. 12.6."""
    note = ("had nobody been lost to follow-up: loss (roles.censored) is weighted by inverse probability of "
            "censoring weights, so loss may depend on the measured baseline and time-varying confounders and on "
            "treatment")
    return estimand.replace(params={**estimand.params, "loss_to_follow_up": "ipcw"},
                            notes=tuple(estimand.notes) + (note,))


def with_competing(estimand: Estimand, measure: str, competing_codes: tuple[int, ...], cause: int = 1) -> Estimand:
    """``estimand`` for a row of an outcome with competing events: names the cause and how competing
    events are treated by ``measure`` (:data:`COMPETING_OF_MEASURE`).

    A cause-specific hazard ratio is marked not causal (Young et al. 2020:
    it conditions on being free of the competing events, which treatment may
    affect); its note says under which hypothetical intervention it would be.

    References
    ----------
    Young JG, Stensrud MJ, Tchetgen Tchetgen EJ, Hernán MA. A causal framework for classical
    statistical estimands in failure-time settings with competing events. Stat Med 2020;39:1199-236.
    """
    how = COMPETING_OF_MEASURE.get(measure)
    if how is None:
        return estimand
    notes = tuple(estimand.notes)
    causal = estimand.causal
    if how == "cause_specific_hazard":
        causal = False
        notes += ("a cause-specific hazard ratio compares hazards among those free of every event: even in a "
                  "randomised trial it is not a causal contrast unless competing events are hypothetically "
                  "eliminated (controlled direct effect)",)
    elif how == "subdistribution_hazard":
        notes += ("the subdistribution hazard ratio summarises the total effect on the cumulative incidence; its "
                  "size is not that of a risk ratio",)
    return estimand.replace(cause=int(cause), competing=how, competing_codes=tuple(int(c) for c in competing_codes),
                            causal=causal, notes=notes)


#: option variants shown in the estimand table (the defaults are always shown)
_VARIANTS: dict[str, tuple[dict[str, Any], ...]] = {
    "landmark": ({"landmark": 3.0, "require_event_free": "pfs"},),
    "sequential_trials": ({"analysis": "per_protocol"},),
    "clone_censor": ({"grace": 6.0, "require_event_free": "pfs", "positivity": "keep"},),
    "time_varying": ({"adjust_state": "pfs"}, {"adjust_time_varying": True}),
}
_ADJ_VARIANTS: dict[str, tuple[dict[str, Any], ...]] = {"iptw": ({"estimand": "ATT"}, {"estimand": "ATO"}),
                                                        "msm": ({"numerator": "time"},)}


def estimand_table(designs: Mapping[str, Any], adjustments: Mapping[str, Any]) -> list[dict[str, str]]:
    """Every design x adjustment of the given registries (defaults and the main option variants) with its estimand.

    Takes the registries as arguments (this module imports nothing from
    :mod:`causal_hcc.strategies`, which imports it);
    :func:`causal_hcc.strategies.estimand_table` passes the loaded registry,
    and ``docs/estimands.md`` is checked against it by a test.
    """
    rows = []
    for dname in sorted(designs):
        dcls = designs[dname]
        for dopts in ({},) + _VARIANTS.get(dname, ()):
            for aname in sorted(adjustments):
                acls = adjustments[aname]
                if dcls.incompatible.get(aname) or acls.incompatible.get(dname):
                    continue
                for aopts in ({},) + _ADJ_VARIANTS.get(aname, ()):
                    d, a = dcls(**dopts), acls(**aopts)
                    for measure in ("hr", "survival_difference"):
                        e = derive_estimand(d, a, measure)
                        rows.append({
                            "design": d.label() + "".join(f" {k}={v}" for k, v in dopts.items()
                                                          if k not in ("landmark", "grace")),
                            "adjustment": a.label(), "measure": "HR" if measure == "hr" else "curves",
                            "population": e.population, "contrast": e.contrast, "origin": e.origin,
                            "scale": e.scale, "causal": "yes" if e.causal else "no", "label": e.label})
    return rows


def estimand_table_markdown(rows: list[dict[str, str]]) -> str:
    """Rows of :func:`estimand_table` as a Markdown table (the block in ``docs/estimands.md``)."""
    cols = ("design", "adjustment", "measure", "population", "contrast", "origin", "scale", "causal", "label")
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        lines.append("| " + " | ".join(f"`{r[c]}`".replace("|", "\\|") if c == "label" else r[c] for c in cols)
                     + " |")
    return "\n".join(lines) + "\n"
