"""Parameters of the digital twin: one frozen, validated object.

Every field can be set from the analysis spec::

    data:
      path: twin
      twin: {true_hr: 0.7, surgery_delay_median: 3, unmeasured_confounding: 1.0, seed: 7, n: 150}

Mapping-valued fields (``prevalence``, ``death_log_hr``, ``progression_log_hr``,
``surgery_log_or``) are *merged* onto their defaults, so a spec can change
one covariate without restating the others.
"""
from __future__ import annotations

import hashlib
import json
import math
from typing import Any, Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from causal_hcc.errors import SpecError

#: Binary covariates of the twin, in the order they are drawn (changing the
#: order changes every cohort: it is part of the reproducibility contract).
BINARY_COVARIATES: tuple[str, ...] = (
    "male", "hbv", "afp_ge_400", "lymph_node_met", "lung_met", "bone_met",
    "adrenal_met", "abdominal_met", "bclc_d", "portal_vein_invasion",
    "hepatic_vein_invasion", "first_line_effective", "tace_haic",
    "multiple_primary", "oligometastases", "metastatic_sd",
)

#: Covariates with an effect in the outcome/candidacy dictionaries (binary ones
#: plus the standardised continuous ones).
EFFECT_COVARIATES: tuple[str, ...] = BINARY_COVARIATES + ("age_per_10y", "tumour_diameter_per_cm")

#: Pooled Table 1 prevalences (Zhang et al. 2024, n = 150); oligometastases
#: (40/150) and metastatic stable disease (19/150) come from the text.
DEFAULT_PREVALENCE: dict[str, float] = {
    "male": 132 / 150, "hbv": 131 / 150, "afp_ge_400": 109 / 150,
    "lymph_node_met": 70 / 150, "lung_met": 45 / 150, "bone_met": 23 / 150,
    "adrenal_met": 11 / 150, "abdominal_met": 30 / 150, "bclc_d": 6 / 150,
    "portal_vein_invasion": 68 / 150, "hepatic_vein_invasion": 21 / 150,
    "first_line_effective": 119 / 150, "tace_haic": 50 / 150,
    "multiple_primary": 41 / 150, "oligometastases": 40 / 150,
    "metastatic_sd": 19 / 150,
}

#: log-HRs on death (both 0->2 and 1->2). Issue #3's starting values: portal-vein
#: invasion 1.8, effective first line 0.55, lung 1.4, bone 1.3, oligometastases
#: 0.6, metastatic SD 1.6, BCLC-D 2.0 (U is set by ``unmeasured_confounding``).
#: Calibration moved oligometastases to HR 0.7 (with 0.6 the operated group's
#: median OS came out ~17.7 months against the published 16.5).
DEFAULT_DEATH_LOG_HR: dict[str, float] = {
    "portal_vein_invasion": round(math.log(1.8), 6),
    "first_line_effective": round(math.log(0.55), 6),
    "lung_met": round(math.log(1.4), 6),
    "bone_met": round(math.log(1.3), 6),
    "oligometastases": round(math.log(0.7), 6),
    "metastatic_sd": round(math.log(1.6), 6),
    "bclc_d": round(math.log(2.0), 6),
}

#: log-ORs of surgical candidacy. Started from the crude Table 1 odds ratios
#: (operated vs not) and calibrated (fixed-point on a 400,000-patient
#: population) so that the *operated* group -- candidates who are still alive,
#: progression-free and under follow-up at their surgery date -- reproduces
#: the Table 1 odds ratios.  Metastatic SD is "strongly negative" (0/26 vs 19/124).
DEFAULT_SURGERY_LOG_OR: dict[str, float] = {
    "male": -0.547, "hbv": 0.885, "afp_ge_400": 0.757, "lymph_node_met": 0.224,
    "lung_met": -0.911, "bone_met": -2.078, "adrenal_met": 0.946,
    "abdominal_met": 0.684, "bclc_d": 1.601, "portal_vein_invasion": -0.392,
    "hepatic_vein_invasion": 1.119, "first_line_effective": -0.353,
    "tace_haic": 0.384, "multiple_primary": 0.604, "oligometastases": 1.456,
    "metastatic_sd": -6.0, "tumour_diameter_per_cm": -0.15,
}


#: the time-varying confounder of ``configs/twin_tv.yaml`` and ``causal-hcc twin --time-varying``: poor
#: performance status in 30% at time zero and persistent (log-OR 3 on the previous status; -1.5 after a good
#: one), multiplies the death hazard by 3.3 (log 1.2); a candidate due for surgery with poor status is
#: operated with probability 0.05 (else re-decided at the next assessment), and surgery lowers the odds of
#: poor status afterwards (log-OR -1: treatment-confounder feedback)
TIME_VARYING_PRESET: dict[str, float] = {"ps_poor_baseline": 0.3, "ps_logit": -1.5, "ps_persistence_log_or": 3.0,
                                         "ps_death_log_hr": 1.2, "ps_poor_operate_prob": 0.05,
                                         "ps_surgery_log_or": -1.0}


#: log-HRs on the liver-failure hazard (the competing cause): HBV infection and age (both also
#: drive surgical candidacy or death, so the competing event is confounded too)
DEFAULT_COMPETING_LOG_HR: dict[str, float] = {"hbv": round(math.log(1.5), 6), "age_per_10y": round(math.log(1.3), 6)}

#: the competing cause of ``causal-hcc twin --competing`` and ``configs/twin_competing.yaml``: liver-failure
#: deaths at 0.01 per month (about one death in six), doubled by HBV ... and by surgery (HR 1.5)
COMPETING_PRESET: dict[str, float] = {"competing_death_rate": 0.01, "true_hr_competing": 1.5}


#: parameters added after the stored keys (``key`` leaves them out at their defaults)
LATER_FIELDS: tuple[str, ...] = (
    "visit_interval", "ps_poor_baseline", "ps_logit", "ps_persistence_log_or", "ps_progression_log_or",
    "ps_surgery_log_or", "ps_death_log_hr", "ps_poor_operate_prob", "competing_death_rate", "competing_log_hr",
    "true_hr_competing",
)


def _check_keys(name: str, value: Mapping[str, float], valid: tuple[str, ...]) -> None:
    bad = [k for k in value if k not in valid]
    if bad:
        raise ValueError(f"unknown covariate {bad[0]!r}; valid: {', '.join(valid)}")


class TwinParams(BaseModel):
    """Every parameter of the digital twin's data-generating process.

    Time is in months from time zero (first PR/CR after conversion therapy).
    The process is an illness-death model: 0 (progression-free) -> 1
    (progressed) -> 2 (dead), and 0 -> 2 directly.

    * Progression 0->1: Weibull, cumulative hazard
      ``(progression_rate * t) ** progression_shape * exp(lp_prog)``.
    * Death 0->2: ``death_rate_pf * exp(lp_death)``; death 1->2:
      ``death_rate_progressed * exp(lp_death)`` (constant hazards).
    * ``lp_death = sum(death_log_hr[x] * x) - unmeasured_confounding * U`` where U
      (``u_fitness``) is standard normal and *higher U means fitter*;
      ``lp_prog`` uses ``progression_log_hr`` (default: half of each death
      log-HR) and ``u_progression_log_hr`` for U (default: half of the U effect on death).
    * Surgical candidacy: logistic with ``surgery_log_or`` + ``u_surgery_log_or * U``
      + a centre random intercept (SD ``centre_surgery_sd``); the intercept is
      solved so that the expected share operated is ``target_operated / 150``.
      A candidate is operated after a Gamma delay (median
      ``surgery_delay_median``, shape ``surgery_delay_shape``) only if still
      alive, progression-free and under follow-up then.
    * From the day of surgery the death hazards are multiplied by ``true_hr``
      and the progression hazard by ``true_hr_progression``.
    * With ``recalibrate`` (default) and a non-null effect, the parameters that
      only the published data pin down are re-solved for that effect
      (:func:`causal_hcc.twin.recalibrate.resolve`), so the observed cohort keeps
      the paper's medians and Table 1 whatever ``true_hr`` is.
    * Time-varying confounder (issue 19): a performance status (``ecog_ge1``: 1 = ECOG >= 1,
      "poor") assessed at visits every ``visit_interval`` months from time zero. At time zero
      poor with probability ``ps_poor_baseline``; at each later assessment poor with
      log-odds ``ps_logit + ps_persistence_log_or * poor_before + ps_progression_log_or *
      progressed + ps_surgery_log_or * operated`` (progression and surgery by then). It holds
      until the next assessment. While poor, both death hazards are multiplied by
      ``exp(ps_death_log_hr)``; a candidate due for surgery (at the delay, or at a deferred
      assessment) with poor status is operated with probability ``ps_poor_operate_prob``,
      otherwise the decision is deferred to the next assessment. The defaults make it inert
      (:attr:`tv_active` False): every cohort and truth is then that of the twin without it.
    * Competing cause of death (issue 21; off by default): death from liver failure at hazard
      ``competing_death_rate * exp(sum(competing_log_hr[x] * x))``, multiplied by
      ``true_hr_competing`` from the day of surgery, independent of the cancer process given
      the covariates. OS is then death from any cause and ``death_cause`` says which (1
      cancer, 2 liver failure, 0 alive).
    * Potential follow-up ``followup_min + followup_span * Beta(followup_beta_a,
      followup_beta_b)`` months (accrual 2015-2022, cut-off 30 Nov 2022); the
      calendar year of time zero (``era``) is the cut-off minus follow-up.

    Use :meth:`from_spec` to build it from a (YAML) mapping: unknown keys and
    invalid values raise :class:`causal_hcc.errors.SpecError`.

    References
    ----------
    Zhang X. et al. Surgical treatment improves overall survival of HCC with
    extrahepatic metastases after conversion therapy: a multicenter
    retrospective study (published online 28 April 2024).
    Putter H., Fiocco M., Geskus R.B. Tutorial in biostatistics: competing
    risks and multi-state models. Stat Med 26:2389-2430 (2007).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)

    # --- cohort -------------------------------------------------------------
    n: int = Field(150, ge=10, le=10_000_000, description="number of patients")
    seed: int = Field(2024, ge=0, description="seed of numpy's PCG64 generator")
    include_unmeasured: bool = Field(False, description="write the unmeasured U as column u_fitness")
    n_centres: int = Field(15, ge=1, le=1000, description="number of centres")
    # --- treatment effect (the truth) ---------------------------------------
    true_hr: float = Field(1.0, gt=0, description="HR of surgery on death hazards, from the day of surgery")
    true_hr_progression: float = Field(1.0, gt=0, description="HR of surgery on progression, from the day of surgery")
    # --- surgery --------------------------------------------------------------
    surgery_delay_median: float = Field(2.5, gt=0, description="median months from time zero to surgery (Gamma)")
    surgery_delay_shape: float = Field(2.0, gt=0, description="Gamma shape of the delay to surgery")
    target_operated: float = Field(26.0, gt=0, lt=150, description="expected operated per 150 patients")
    surgery_log_or: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_SURGERY_LOG_OR))
    u_surgery_log_or: float = Field(0.3, description="log-OR of candidacy per SD of U (fitter -> operated)")
    centre_surgery_sd: float = Field(0.5, ge=0, description="SD of the centre random intercept in candidacy")
    # --- outcomes -------------------------------------------------------------
    unmeasured_confounding: float = Field(
        round(math.log(1.5), 6),
        description="log-HR of death per SD of U (hazard x exp(-value*U); U = fitness)")
    progression_rate: float = Field(0.059, gt=0, description="Weibull rate (1/scale) of progression, per month")
    progression_shape: float = Field(1.1, gt=0, description="Weibull shape of progression")
    death_rate_pf: float = Field(0.012, gt=0, description="death hazard before progression, per month")
    death_rate_progressed: float = Field(0.60, gt=0, description="death hazard after progression, per month")
    death_log_hr: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_DEATH_LOG_HR))
    progression_log_hr: dict[str, float] | None = Field(
        None, description="log-HRs on progression; None: half of death_log_hr (and of U)")
    u_progression_log_hr: float | None = Field(
        None, description="log-HR of progression per SD of U (hazard x exp(-value*U)); None: half of "
                          "unmeasured_confounding")
    # --- covariates -----------------------------------------------------------
    prevalence: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_PREVALENCE))
    age_mean: float = Field(55.0, description="mean age, years (normal, rounded to whole years)")
    age_sd: float = Field(8.9, gt=0, description="SD of age (IQR 49-61 in Table 1)")
    diameter_median: float = Field(6.0, gt=0, description="median tumour diameter, cm (log-normal)")
    diameter_log_sd: float = Field(0.38, gt=0, description="SD of log diameter (IQR 4.8-8.0 cm)")
    # --- follow-up ------------------------------------------------------------
    followup_min: float = Field(6.0, ge=0, description="shortest potential follow-up, months")
    followup_span: float = Field(78.0, gt=0, description="potential follow-up = min + span * Beta(a, b)")
    followup_beta_a: float = Field(1.0, gt=0)
    followup_beta_b: float = Field(3.0, gt=0)
    cutoff_year: float = Field(2022 + 11 / 12, description="data cut-off as a decimal year (30 Nov 2022)")
    # --- time-varying confounder: performance status at each assessment (issue 19) ---------
    visit_interval: float = Field(2.0, gt=0, le=84, description="months between assessments (visits at 0, h, 2h, "
                                  "...): the performance status is measured at each")
    ps_poor_baseline: float = Field(0.25, ge=0, le=1, description="P(poor performance status, ECOG >= 1) at time zero")
    ps_logit: float = Field(-2.2, description="log-odds of poor performance status at an assessment after a good one, "
                            "progression-free and not operated")
    ps_persistence_log_or: float = Field(2.5, description="log-OR of poor status given poor status at the previous "
                                         "assessment")
    ps_progression_log_or: float = Field(2.0, description="log-OR of poor status once progressed (treatment affects "
                                         "it through progression)")
    ps_surgery_log_or: float = Field(0.0, description="log-OR of poor status after surgery (treatment-confounder "
                                     "feedback)")
    ps_death_log_hr: float = Field(0.0, description="log-HR of death (both states) while the current status is poor; "
                                   "0: the status does not affect death")
    ps_poor_operate_prob: float = Field(1.0, ge=0, le=1, description="probability that a candidate due for surgery "
                                        "with poor status is operated at that decision; otherwise the decision is "
                                        "deferred to the next assessment (1: the status does not affect surgery)")
    # --- competing cause of death: liver failure (issue 21) --------------------------------
    competing_death_rate: float = Field(0.0, ge=0, description="hazard of death from liver failure (a cause "
                                        "competing with cancer death), per month; 0: off (the twin has one cause)")
    competing_log_hr: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_COMPETING_LOG_HR),
                                               description="log-HRs on the liver-failure hazard")
    true_hr_competing: float = Field(1.0, gt=0, description="HR of surgery on the liver-failure hazard, from the "
                                     "day of surgery (e.g. > 1: post-hepatectomy liver failure)")
    # --- truth ----------------------------------------------------------------
    truth_seed: int = Field(20240428, ge=0, description="seed of the large population used for the truth")
    recalibrate: bool = Field(
        True, description="with a non-null effect, re-solve u_surgery_log_or, unmeasured_confounding, "
                          "u_progression_log_hr, death_rate_progressed and progression_rate (those not set) so "
                          "that the observed cohort keeps the published medians and Table 1 "
                          "(causal_hcc.twin.recalibrate)")

    @field_validator("prevalence")
    @classmethod
    def _prev(cls, v: dict[str, float]) -> dict[str, float]:
        _check_keys("prevalence", v, BINARY_COVARIATES)
        for k, p in v.items():
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"prevalence of {k!r} must be in [0, 1] (got {p})")
        missing = [k for k in BINARY_COVARIATES if k not in v]
        if missing:
            raise ValueError(f"prevalence misses {missing[0]!r}")
        return v

    @field_validator("death_log_hr", "surgery_log_or", "progression_log_hr", "competing_log_hr")
    @classmethod
    def _effects(cls, v: dict[str, float] | None) -> dict[str, float] | None:
        if v is not None:
            _check_keys("effects", v, EFFECT_COVARIATES)
            for k, b in v.items():
                if not math.isfinite(b):
                    raise ValueError(f"effect of {k!r} must be finite (got {b})")
        return v

    # ------------------------------------------------------------------ API
    @classmethod
    def valid_keys(cls) -> list[str]:
        """Names of every settable parameter, in declaration order."""
        return list(cls.model_fields)

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any] | None) -> "TwinParams":
        """Build from a spec mapping (``data.twin``); errors become one-line SpecErrors.

        Mapping-valued fields are merged onto their defaults.
        """
        spec = dict(spec or {})
        valid = cls.valid_keys()
        unknown = [k for k in spec if k not in valid]
        if unknown:
            from causal_hcc.base import closest

            raise SpecError(f"data.twin: unknown key {unknown[0]!r}{closest(str(unknown[0]), valid)}; "
                            f"valid keys: {', '.join(valid)}")
        merged: dict[str, Any] = {}
        for key, value in spec.items():
            default = cls.model_fields[key].get_default(call_default_factory=True)
            if isinstance(default, dict) and isinstance(value, Mapping):
                value = {**default, **dict(value)}
            elif key == "progression_log_hr" and isinstance(value, Mapping):
                value = dict(value)
            merged[key] = value
        try:
            return cls(**merged)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"])
            msg = err["msg"].removeprefix("Value error, ")
            got = err.get("input")
            if isinstance(got, (int, float, str, bool)) and "got" not in msg:
                msg = f"{msg} (got {got!r})"
            raise SpecError(f"data.twin.{where}: {msg}") from None

    @property
    def tv_active(self) -> bool:
        """True when the performance status changes surgery or death (the time-varying confounder is on).

        Off (the default), the status is still simulated and written to the visits table, but it
        affects nothing, so every cohort and truth is that of the twin without it."""
        return self.ps_death_log_hr != 0.0 or self.ps_poor_operate_prob != 1.0

    @property
    def no_effect(self) -> bool:
        """True when surgery changes nothing: no effect on death or progression, nor on death through
        the performance status (``ps_surgery_log_or`` with ``ps_death_log_hr``), nor on the competing death."""
        return (self.true_hr == 1.0 and self.true_hr_progression == 1.0
                and (self.ps_surgery_log_or == 0.0 or self.ps_death_log_hr == 0.0)
                and (not self.competing or self.true_hr_competing == 1.0))

    @property
    def competing(self) -> bool:
        """True when the twin has a competing cause of death (``competing_death_rate`` > 0)."""
        return self.competing_death_rate > 0.0

    def effective_progression_log_hr(self) -> dict[str, float]:
        """log-HRs on progression actually used (default: half of the death ones)."""
        if self.progression_log_hr is not None:
            return dict(self.progression_log_hr)
        return {k: 0.5 * v for k, v in self.death_log_hr.items()}

    def key(self, *, exclude: tuple[str, ...] = ()) -> str:
        """sha256 of the canonical JSON of the parameters (minus ``exclude``).

        Parameters added later (the time-varying confounder, the competing cause) are left out
        while at their defaults, so the keys of earlier twins -- and the stored recalibration
        solutions keyed by them -- stay as they were."""
        later = {k for k in LATER_FIELDS
                 if getattr(self, k) == type(self).model_fields[k].get_default(call_default_factory=True)}
        d = self.model_dump(exclude=set(exclude) | later)
        blob = json.dumps(d, sort_keys=True, separators=(",", ":"), default=float)
        return hashlib.sha256(blob.encode()).hexdigest()
