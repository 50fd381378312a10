"""The strategy registry: name -> design, adjustment, preset.

Designs and adjustments register themselves with :func:`register_design` and
:func:`register_adjustment` when their module is imported (every module in
``causal_hcc/design/`` and ``causal_hcc/adjust/`` is imported on first use of
the registry). Third-party packages add theirs through the entry-point group
``causal_hcc.strategies``: each entry point names a module or a callable that
registers its components when loaded.

A spec entry resolves to a :class:`StrategySpec`:

* ``"naive"`` / ``{name: naive}`` — a preset (design + adjustment + fixed
  options). Any registered adjustment name is also a preset on the
  ``baseline`` design (``iptw`` = baseline + iptw), and any design name a
  preset with no adjustment (``landmark`` = landmark + none).
* ``{design: landmark, adjustment: iptw, landmark: 3, estimand: ATO}`` — an
  explicit pair; each other key is routed to the component that declares it.

Unknown names and options fail here, when the spec loads, listing the valid
choices (WeightIt's method table is the model).
"""
from __future__ import annotations

import dataclasses
import importlib
import itertools
import pkgutil
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Sequence

import numpy as np

from causal_hcc.base import Adjustment, Component, Design, Targets, closest, n_distinct
from causal_hcc.errors import SpecError, shown
from causal_hcc import estimands as _estimands
from causal_hcc.estimands import Estimand, derive_estimand
from causal_hcc.results import StrategyOutput

ENTRY_POINT_GROUP = "causal_hcc.strategies"

DESIGNS: dict[str, type[Design]] = {}
ADJUSTMENTS: dict[str, type[Adjustment]] = {}
PRESETS: dict[str, "Preset"] = {}
_loaded = False


@dataclass(frozen=True)
class Preset:
    name: str
    design: str
    adjustment: str
    options: dict[str, Any] = field(default_factory=dict)
    doc: str = ""


def register_design(cls: type[Design]) -> type[Design]:
    """Class decorator: make a design available under ``cls.name``."""
    if not cls.name:
        raise ValueError(f"{cls!r} has no name")
    DESIGNS[cls.name] = cls
    return cls


def register_adjustment(cls: type[Adjustment]) -> type[Adjustment]:
    """Class decorator: make an adjustment available under ``cls.name``."""
    if not cls.name:
        raise ValueError(f"{cls!r} has no name")
    ADJUSTMENTS[cls.name] = cls
    return cls


def register_preset(name: str, design: str, adjustment: str, doc: str = "", **options: Any) -> None:
    """A named shortcut for a design x adjustment pair with fixed options."""
    PRESETS[name] = Preset(name, design, adjustment, dict(options), doc)


def _import_package_modules(pkg_name: str) -> None:
    pkg = importlib.import_module(pkg_name)
    for mod in pkgutil.iter_modules(pkg.__path__):
        if not mod.name.startswith("_"):
            importlib.import_module(f"{pkg_name}.{mod.name}")


def load() -> None:
    """Import built-in components and entry-point plug-ins (once)."""
    global _loaded
    if _loaded:
        return
    _import_package_modules("causal_hcc.design")
    _import_package_modules("causal_hcc.adjust")
    register_preset("naive", "baseline", "none",
                    "Treatment counted from time zero, no adjustment: the comparison the paper made.")
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            obj = ep.load()
        except Exception as err:  # a broken plug-in names itself, in one line
            raise SpecError(f"plug-in '{ep.name}' ({ep.value}) of group {ENTRY_POINT_GROUP} failed to load: "
                            f"{type(err).__name__}: {err}") from err
        if callable(obj):
            obj()
    _loaded = True


def all_names() -> list[str]:
    load()
    names = set(PRESETS) | set(ADJUSTMENTS) | set(DESIGNS)
    return sorted(names)


@dataclass(frozen=True)
class StrategySpec:
    """A resolved, validated strategy entry."""

    design: str
    adjustment: str
    design_options: dict[str, Any]
    adjustment_options: dict[str, Any]
    label: str
    variance: str = "default"   # "default" | "bootstrap"
    #: subset of the spec's confounders this strategy uses (None: all of them)
    confounders: tuple[str, ...] | None = None
    #: bootstrap interval of this strategy (None: the spec's ``bootstrap.ci``)
    bootstrap_ci: str | None = None
    #: True when the spec entry gave ``label`` (never renamed by :func:`unique_labels`)
    explicit_label: bool = field(default=False, compare=False)

    def build(self, default_confounders: Sequence[str] | None = None) -> "Strategy":
        """Instantiate; ``default_confounders`` applies when the entry names none."""
        load()
        d = DESIGNS[self.design](**self.design_options)
        a = ADJUSTMENTS[self.adjustment](**self.adjustment_options)
        conf = self.confounders if self.confounders is not None else default_confounders
        return Strategy(d, a, self.label, variance=self.variance, confounders=conf, bootstrap_ci=self.bootstrap_ci)

    def as_dict(self) -> dict[str, Any]:
        return {"label": self.label, "design": self.design, "adjustment": self.adjustment,
                "design_options": _jsonable(self.design_options),
                "adjustment_options": _jsonable(self.adjustment_options), "variance": self.variance,
                "confounders": None if self.confounders is None else list(self.confounders),
                "bootstrap_ci": self.bootstrap_ci}


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}


class Strategy:
    """One design x one adjustment, ready to fit on a cohort."""

    def __init__(self, design: Design, adjustment: Adjustment, label: str, variance: str = "default",
                 confounders: Sequence[str] | None = None, bootstrap_ci: str | None = None):
        self.design = design
        self.adjustment = adjustment
        bind = getattr(design, "bind_adjustment", None)
        if callable(bind):   # a design whose weights depend on the outcome model (stabilised weights' numerator)
            bind(adjustment)
        self.label = label
        self.variance = variance
        self.confounders = None if confounders is None else tuple(confounders)
        self.bootstrap_ci = bootstrap_ci

    def estimand(self, measure: str = "hr", row_strategy: str = "", competing: tuple[int, ...] = (),
                 loss_weighted: bool = False) -> "Estimand":
        """The causal question a row of this strategy answers (derived from design and adjustment).

        ``competing``: the outcome's competing event codes; the estimand then
        names the cause and the measure's treatment of competing events
        (:func:`causal_hcc.estimands.with_competing`). The cause-specific and
        subdistribution HRs take the scale an ``hr`` of the strategy has.
        """
        from causal_hcc.results import HAZARD_RATIO_MEASURES

        base = "hr" if measure in HAZARD_RATIO_MEASURES else measure
        est = derive_estimand(self.design, self.adjustment, base, row_strategy)
        if loss_weighted:   # roles.censored: IPC weights for loss to follow-up were applied
            from causal_hcc.estimands import with_loss_weights

            est = with_loss_weights(est)
        if competing:
            from causal_hcc.estimands import with_competing

            est = with_competing(est, measure, competing)
        return est

    @property
    def needs_bootstrap(self) -> bool:
        return self.variance == "bootstrap" or self.design.needs_bootstrap or self.adjustment.needs_bootstrap

    def fit(self, cohort: Any, outcome: str, targets: Targets) -> StrategyOutput:
        """Run design then adjustment; returns estimates labelled with this strategy."""
        if self.confounders is not None and list(self.confounders) != list(cohort.confounders):
            cohort = cohort.select_confounders(self.confounders)
        data = self.design.fit(cohort, outcome).data_
        if data.cohort is None:
            data.cohort = cohort
        out = self.adjustment.fit(data, targets).output_
        estimates = []
        for e in out.estimates:
            est = self.estimand(e.measure, e.strategy, tuple(getattr(data, "competing", ()) or ()),
                                loss_weighted="loss_weights" in out.diagnostics)
            out.estimands.setdefault(est.label, est.to_dict())
            estimates.append(e.replace(strategy=e.strategy or self.label, design=self.design.name,
                                       adjustment=self.adjustment.name, outcome=outcome, estimand=est.label))
        out.estimates = estimates
        out.warnings = list(data.warnings) + arm_size_warnings(data, cohort) + list(out.warnings)
        out.notes = list(data.notes) + list(out.notes)
        out.diagnostics.setdefault("flow", [list(f) for f in data.flow])
        if data.diagnostics:
            out.diagnostics.setdefault("design", data.diagnostics)
        return out


#: an arm with fewer patients than this gets a warning, whatever the design
MIN_ARM_PATIENTS = 5


def arm_size_warnings(data: Any, cohort: Any = None) -> list[str]:
    """A warning per arm with fewer than :data:`MIN_ARM_PATIENTS` distinct patients.

    Patients are counted per arm from the design's rows (a time-varying
    patient counts in both arms; a sequential-trial patient once per arm).
    For clone-censor designs, where every patient has a clone in both arms,
    the treated arm is counted as the patients who were actually treated.
    """
    pat = np.asarray(data.patient)
    a = np.asarray(data.treatment) == 1
    n_arm = {1: n_distinct(pat[a]), 0: n_distinct(pat[~a])}  # not np.unique: slow on ints (base.n_distinct)
    if getattr(data, "design", "") == "clone_censor" and cohort is not None:
        treated = np.asarray(getattr(cohort, "treatment", np.zeros(0)))
        if treated.size:
            n_arm[1] = int((treated[np.unique(pat)] == 1).sum())
    out = []
    for arm in (1, 0):
        if n_arm[arm] < MIN_ARM_PATIENTS:
            out.append(f"only {n_arm[arm]} patient{'s' if n_arm[arm] != 1 else ''} in the {data.arm_names[arm]} arm "
                       f"of the '{data.design}' analysis of '{data.outcome}' (< {MIN_ARM_PATIENTS}): no estimate "
                       f"from so few patients can be trusted, whatever its p-value or CI")
    return out


def _label(design: type[Design], dopts: dict, adjustment: type[Adjustment], aopts: dict) -> str:
    dl = design(**dopts).label()
    al = adjustment(**aopts).label()
    if design.name == "baseline" and adjustment.name == "none" and al != "none":
        return "naive" + al[len("none"):]      # e.g. naive(firth)
    parts = [p for p, skip in ((dl, design.name == "baseline"), (al, al == "none")) if not skip]
    return "+".join(parts) if parts else "naive"


def resolve(entry: Any, where: str = "strategies") -> list[StrategySpec]:
    """Resolve one spec entry into one or more (sweeps) StrategySpecs."""
    load()
    if isinstance(entry, str):
        entry = {"name": entry}
    if not isinstance(entry, dict):
        raise SpecError(f"{where}: a strategy must be a name or a mapping, got {shown(entry)}")
    entry = dict(entry)
    label = entry.pop("label", None)
    confounders = entry.pop("confounders", None)
    if confounders is not None and (not isinstance(confounders, list)
                                    or not all(isinstance(c, str) for c in confounders)):
        raise SpecError(f"{where}: option 'confounders' must be a list of column names, got {shown(confounders)}")
    variance = entry.pop("variance", "default")
    if variance not in ("default", "bootstrap"):
        raise SpecError(f"{where}: option 'variance' must be one of default, bootstrap, got {shown(variance)}")
    bootstrap_ci = entry.pop("bootstrap_ci", None)
    if bootstrap_ci not in (None, "percentile", "normal", "bca"):
        raise SpecError(f"{where}: option 'bootstrap_ci' must be one of percentile, normal, bca, "
                        f"got {shown(bootstrap_ci)}")
    name = entry.pop("name", None)
    preset_opts: dict[str, Any] = {}
    if name is not None:
        if "design" in entry or "adjustment" in entry:
            raise SpecError(f"{where}: give either 'name' or 'design'/'adjustment', not both")
        if not isinstance(name, str):
            raise SpecError(f"{where}: strategy name must be a string, got {shown(name)}")
        if name in PRESETS:
            p = PRESETS[name]
            dname, aname, preset_opts = p.design, p.adjustment, dict(p.options)
        elif name in ADJUSTMENTS:
            dname, aname = "baseline", name
        elif name in DESIGNS:
            dname, aname = name, "none"
        else:
            valid = all_names()
            raise SpecError(f"{where}: unknown strategy '{name}'{closest(name, valid)}; valid: {', '.join(valid)}")
    else:
        dname = entry.pop("design", "baseline")
        aname = entry.pop("adjustment", "none")
        if dname not in DESIGNS:
            raise SpecError(f"{where}: unknown design '{dname}'{closest(str(dname), list(DESIGNS))}; "
                            f"valid: {', '.join(sorted(DESIGNS))}")
        if aname not in ADJUSTMENTS:
            raise SpecError(f"{where}: unknown adjustment '{aname}'{closest(str(aname), list(ADJUSTMENTS))}; "
                            f"valid: {', '.join(sorted(ADJUSTMENTS))}")
    dcls, acls = DESIGNS[dname], ADJUSTMENTS[aname]
    why = dcls.incompatible.get(aname) or acls.incompatible.get(dname)
    if why:
        raise SpecError(f"{where}: design '{dname}' cannot be combined with adjustment '{aname}': {why}")
    opts = {**preset_opts, **entry}
    dnames, anames = set(dcls.option_names()), set(acls.option_names())
    dopts, aopts = {}, {}
    for k, v in opts.items():
        if k not in dnames and k not in anames:
            valid = sorted(dnames | anames | {"label", "variance", "confounders", "bootstrap_ci"})
            raise SpecError(f"{where}: strategy '{name or dname + '+' + aname}' has no option '{k}'"
                            f"{closest(k, valid)}; valid options: {', '.join(valid) or 'none'}")
        if k in dnames:
            dopts[k] = v
        if k in anames:
            aopts[k] = v
    # sweeps: a list given to a sweepable scalar option expands the strategy
    sweeps = {o.name: v for o in dcls.options if o.sweep and isinstance(v := dopts.get(o.name), list)}
    combos = [dict(zip(sweeps, vals)) for vals in itertools.product(*sweeps.values())] if sweeps else [{}]
    specs = []
    for combo in combos:
        d = dcls.validate_options({**dopts, **combo}, f"{where}: design '{dname}'")
        a = acls.validate_options(aopts, f"{where}: adjustment '{aname}'")
        pair = getattr(dcls, "check_adjustment", None)
        if callable(pair):
            pair(d, acls, f"{where}: design '{dname}'")
        lab = label if (label and len(combos) == 1) else (f"{label}[{combo}]" if label else _label(dcls, d, acls, a))
        if name in PRESETS and not entry and not combo and name not in DESIGNS and name not in ADJUSTMENTS:
            lab = label or name
        specs.append(StrategySpec(dname, aname, d, a, lab, variance,
                                  None if confounders is None else tuple(confounders), bootstrap_ci,
                                  explicit_label=bool(label)))
    return specs


def _option_text(v: Any) -> str:
    if isinstance(v, (list, tuple)):
        return ",".join(map(str, v))
    return f"{v:g}" if isinstance(v, float) else str(v)


def unique_labels(specs: Sequence[StrategySpec]) -> list[StrategySpec]:
    """Give strategy variants that share a default label distinct labels.

    Two entries that differ only in an option their label does not show
    (``{name: iptw, estimand: ATE}`` and the same with ``stabilized: true``)
    both get the default label ``iptw(ATE)``; each is renamed by the options
    in which the group differs (``iptw(ATE)[stabilized=True]``), and entries
    identical in every option get ``#2``, ``#3``. Labels given in the spec
    are never changed: a duplicate among them is an error (:class:`SpecError`).
    """
    labels = [s.label for s in specs]
    given = [s.label for s in specs if s.explicit_label]
    dup_given = sorted({x for x in given if given.count(x) > 1})
    if dup_given:
        raise SpecError(f"strategies: duplicate strategy label(s) {', '.join(dup_given)}; give each a distinct 'label'")
    out = list(specs)
    for lab in dict.fromkeys(labels):
        idx = [i for i, s in enumerate(specs) if s.label == lab]
        if len(idx) < 2:
            continue

        def opts(s: StrategySpec) -> dict[str, Any]:
            return {**s.design_options, **s.adjustment_options, "variance": s.variance,
                    "bootstrap_ci": s.bootstrap_ci,
                    "confounders": None if s.confounders is None else list(s.confounders)}

        idx = [i for i in idx if not specs[i].explicit_label]  # labels given in the spec stay
        all_opts = [opts(specs[i]) for i in idx]
        keys = [k for k in dict.fromkeys(k for o in all_opts for k in o)
                if len({repr(o.get(k)) for o in all_opts}) > 1]
        seen: dict[str, int] = {lab: 1} if lab in given else {}
        for i, o in zip(idx, all_opts):
            extra = ",".join(f"{k}={_option_text(o.get(k))}" for k in keys if o.get(k) not in (None, [], ()))
            new = f"{lab}[{extra}]" if extra else lab
            seen[new] = seen.get(new, 0) + 1
            if seen[new] > 1:
                new = f"{new}#{seen[new]}"
            out[i] = dataclasses.replace(specs[i], label=new)
    return out


def describe() -> list[dict[str, Any]]:
    """The registry as data: for ``causal-hcc strategies`` and the docs."""
    load()
    rows: list[dict[str, Any]] = []

    def comp(kind: str, c: type[Component]) -> dict[str, Any]:
        return {"kind": kind, "name": c.name, "description": c.description,
                "options": [{"name": o.name, "type": o.kind, "default": o.default, "doc": o.doc,
                             "choices": list(o.choices) if o.choices else None} for o in c.options],
                "incompatible": dict(c.incompatible), "references": list(c.references)}

    for n in sorted(PRESETS):
        p = PRESETS[n]
        rows.append({"kind": "preset", "name": n, "description": p.doc, "design": p.design,
                     "adjustment": p.adjustment, "options": [{"name": k, "default": v} for k, v in p.options.items()]})
    rows += [comp("design", DESIGNS[n]) for n in sorted(DESIGNS)]
    rows += [comp("adjustment", ADJUSTMENTS[n]) for n in sorted(ADJUSTMENTS)]
    return rows


def estimand_table() -> list[dict[str, str]]:
    """Every registered design x adjustment with its estimand (:func:`causal_hcc.estimands.estimand_table`)."""
    load()
    return _estimands.estimand_table(DESIGNS, ADJUSTMENTS)


def estimand_table_markdown() -> str:
    """The registry's estimand table in Markdown: the block in ``docs/estimands.md``."""
    return _estimands.estimand_table_markdown(estimand_table())
