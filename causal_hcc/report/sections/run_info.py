"""Run: provenance (study, data source and hash, spec hash, seed, versions) and the resolved spec."""
from __future__ import annotations

from typing import Any


def build(ctx: Any) -> dict[str, Any]:
    import yaml

    result = ctx.result
    prov = result.provenance or {}
    src = prov.get("data_source")
    if isinstance(src, dict):
        src_text = ", ".join(f"{k}: {v}" for k, v in src.items() if not isinstance(v, (dict, list)))
    else:
        src_text = "" if src is None else str(src)
    versions = prov.get("versions") or {}
    items = [("Study", result.study), ("Data source", src_text), ("Data hash (sha256)", prov.get("data_hash", "")),
             ("Spec hash", prov.get("spec_hash", "")), ("Date", prov.get("date", "")), ("Seed", prov.get("seed", "")),
             ("Command", prov.get("command", "")), ("Time unit", ctx.unit),
             ("Confidence level", f"{100 * (1 - result.alpha):g}%")]
    items += [(k, v) for k, v in prov.items()
              if k not in ("data_source", "data_hash", "spec_hash", "date", "seed", "versions", "command")
              and not isinstance(v, (dict, list))]
    try:
        spec_text = yaml.safe_dump(result.spec, sort_keys=False, allow_unicode=True, default_flow_style=None)
    except yaml.YAMLError:  # pragma: no cover - spec comes from JSON, always dumpable
        spec_text = str(result.spec)
    return {"items": [(k, "" if v is None else str(v)) for k, v in items if v not in (None, "")],
            "versions": [(k, str(v)) for k, v in versions.items()], "spec_yaml": spec_text}
