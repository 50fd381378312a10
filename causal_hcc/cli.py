"""The ``causal-hcc`` command.

Bad input exits with status 2 and one line on stderr (no traceback unless
``--debug``); no half-written output folder is left behind.
"""
from __future__ import annotations

import json
import os
import sys
import traceback
from typing import Callable, Optional

import typer

from causal_hcc.errors import CausalHCCError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Re-estimate a treatment effect under many designs and adjustments, side by side.")

_DEBUG = {"on": False}


def _fail(err: BaseException) -> None:
    if _DEBUG["on"]:
        traceback.print_exception(err)
    if isinstance(err, CausalHCCError):
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(code=2)
    msg = " ".join(str(err).split()) or type(err).__name__
    typer.echo(f"internal error: {type(err).__name__}: {msg} (rerun with --debug for the traceback)", err=True)
    raise typer.Exit(code=1)


def _guard(fn: Callable[[], None]) -> None:
    try:
        fn()
    except typer.Exit:
        raise
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        raise typer.Exit(code=130)
    except BaseException as err:  # noqa: BLE001 - one line per the CLI contract
        _fail(err)


def _formats(value: str) -> tuple[str, ...]:
    fm = tuple(f.strip() for f in value.split(",") if f.strip())
    bad = [f for f in fm if f not in ("html", "md", "pdf")]
    if bad:
        raise CausalHCCError(f"--format: unknown format(s) {', '.join(bad)}; valid: html, md, pdf")
    return fm


@app.callback()
def _main(debug: bool = typer.Option(False, "--debug", help="Show tracebacks.")) -> None:
    _DEBUG["on"] = debug


@app.command()
def run(spec: str = typer.Argument(..., help="Analysis spec (YAML)."),
        output: Optional[str] = typer.Option(None, "--output", "-o", help="Output folder (default: spec's output)."),
        force: bool = typer.Option(False, "--force", help="Replace an existing output folder."),
        n_jobs: Optional[int] = typer.Option(None, "--n-jobs", help="Parallel bootstrap workers."),
        fmt: str = typer.Option("", "--format", help="Report formats, e.g. html,md,pdf (default: spec's)."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress lines."),
        debug: bool = typer.Option(False, "--debug", help="Show tracebacks.")) -> None:
    """Run every strategy of SPEC and write estimates.csv, results.json and the report."""
    _DEBUG["on"] = _DEBUG["on"] or debug

    def go() -> None:
        from causal_hcc.config import load_spec
        from causal_hcc.pipeline import check_output_dir, run_analysis, write_outputs

        s = load_spec(spec)
        folder = output or s.output_dir()
        check_output_dir(folder, force)
        say = None if quiet else (lambda m: typer.echo(f"  {m}", err=True))
        result = run_analysis(s, progress=say, n_jobs=n_jobs)
        formats = _formats(fmt) if fmt else tuple(s.report.formats)
        write_outputs(result, folder, force=force, formats=formats)
        typer.echo(folder)

    _guard(go)


@app.command()
def validate(spec: str = typer.Argument(..., help="Analysis spec (YAML).")) -> None:
    """Check SPEC and its data; run nothing."""

    def go() -> None:
        from causal_hcc.config import load_spec
        from causal_hcc.pipeline import load_data, validation_cohort

        s = load_spec(spec)
        df, _, source = load_data(s)
        c = validation_cohort(s, df, source["source"])
        strategies = s.resolved_strategies()
        typer.echo(f"ok: {c.n} patients ({int(c.treatment.sum())} treated), outcomes {', '.join(c.outcome_names)}, "
                   f"{len(strategies)} strategies: {', '.join(x.label for x in strategies)}")

    _guard(go)


@app.command()
def strategies(as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """List the registry: presets, designs and adjustments with their options."""

    def go() -> None:
        from causal_hcc.strategies import describe

        rows = describe()
        if as_json:
            typer.echo(json.dumps(rows, indent=1, default=str))
            return
        for kind in ("preset", "design", "adjustment"):
            typer.echo(f"{kind}s:")
            for r in (r for r in rows if r["kind"] == kind):
                extra = f" = {r['design']} + {r['adjustment']}" if kind == "preset" else ""
                typer.echo(f"  {r['name']}{extra}: {r['description']}")
                for o in r.get("options", []):
                    if kind == "preset":
                        continue
                    ch = f" one of {', '.join(map(str, o['choices']))};" if o.get("choices") else ""
                    typer.echo(f"      {o['name']} ({o['type']}, default {o['default']!r}):{ch} {o['doc']}")
                for other, why in (r.get("incompatible") or {}).items():
                    typer.echo(f"      not with {other}: {why}")

    _guard(go)


@app.command()
def audit(published: str = typer.Argument(..., help="Transcribed published tables (YAML)."),
          output: Optional[str] = typer.Option(None, "--output", "-o", help="Write audit.csv/audit.md here."),
          force: bool = typer.Option(False, "--force")) -> None:
    """Recompute a paper's reported statistics from its own counts and flag inconsistencies."""

    def go() -> None:
        from causal_hcc.audit import run_audit

        res = run_audit(published)
        typer.echo(res.as_markdown())
        if output:
            from causal_hcc._atomic import atomic_folder

            with atomic_folder(output, force=force) as tmp:
                res.to_csv(os.path.join(tmp, "audit.csv"))
                with open(os.path.join(tmp, "audit.md"), "w", encoding="utf-8") as fh:
                    fh.write(res.as_markdown())
                with open(os.path.join(tmp, "audit.html"), "w", encoding="utf-8") as fh:
                    fh.write(res.as_html())

    _guard(go)


@app.command()
def twin(calibration: bool = typer.Option(False, "--calibration", help="Print the calibration table."),
         seeds: int = typer.Option(200, "--seeds", help="Seeds for the calibration."),
         seed: int = typer.Option(2024, "--seed"),
         output: Optional[str] = typer.Option(None, "--output", "-o", help="Write the twin cohort as CSV."),
         true_hr: Optional[float] = typer.Option(None, "--true-hr")) -> None:
    """The digital twin: write a cohort, or print its calibration against the paper."""

    def go() -> None:
        from causal_hcc.twin import TwinParams, simulate_twin
        from causal_hcc.twin import calibration as calib

        kw = {"seed": seed}
        if true_hr is not None:
            kw["true_hr"] = true_hr
        params = TwinParams.from_spec(kw)
        if calibration:
            tab = calib(n_seeds=seeds, params=params)
            typer.echo(tab.to_string(index=False))
        if output:
            simulate_twin(params).to_csv(output, index=False)
            typer.echo(output)
        if not calibration and not output:
            raise CausalHCCError("twin: give --calibration and/or --output FILE")

    _guard(go)


@app.command()
def report(results_dir: str = typer.Argument(..., help="A run's output folder (with results.json)."),
           fmt: str = typer.Option("html,md", "--format", help="html,md,pdf")) -> None:
    """Rebuild the report from results.json without refitting."""

    def go() -> None:
        from causal_hcc.results import AnalysisResult
        from causal_hcc.report.render import write_report

        if not os.path.exists(os.path.join(results_dir, "results.json")):
            raise CausalHCCError(f"report: no results.json in '{results_dir}'")
        write_report(AnalysisResult.load(results_dir), results_dir, formats=_formats(fmt))
        typer.echo(os.path.join(results_dir, "report.html"))

    _guard(go)


@app.command()
def simulate(spec: str = typer.Argument(..., help="Analysis spec (YAML) with data: {path: twin}."),
             replicates: int = typer.Option(100, "--replicates", "-r"),
             seed: int = typer.Option(1, "--seed"),
             n_jobs: int = typer.Option(1, "--n-jobs"),
             scheduler: Optional[str] = typer.Option(None, "--scheduler", help="Dask scheduler tcp://host:port."),
             dask_local: Optional[int] = typer.Option(None, "--dask-local", help="Start a local Dask cluster of N workers."),
             bootstrap_replicates: int = typer.Option(
                 0, "--bootstrap-replicates",
                 help="Whole-pipeline bootstrap inside each replicate for strategies that need it (0: none)."),
             output: Optional[str] = typer.Option(None, "--output", "-o"),
             force: bool = typer.Option(False, "--force")) -> None:
    """Monte Carlo study: every strategy of SPEC on twin replicates; bias, SE, RMSE, coverage."""

    def go() -> None:
        from causal_hcc.config import load_spec
        from causal_hcc.pipeline import check_output_dir
        from causal_hcc.simstudy import run_simulation_spec

        s = load_spec(spec)
        folder = output or (s.output_dir().rstrip("/") + "-simulation")
        check_output_dir(folder, force)
        path = run_simulation_spec(s, folder, replicates=replicates, seed=seed, n_jobs=n_jobs,
                                   scheduler=scheduler, dask_local=dask_local, force=force,
                                   bootstrap_replicates=bootstrap_replicates)
        typer.echo(path)

    _guard(go)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    try:
        app(args=argv, standalone_mode=True)
    except SystemExit as e:  # typer/click usage errors exit 2 already
        if e.code not in (0, None):
            sys.exit(e.code)
        raise


if __name__ == "__main__":  # pragma: no cover
    main()
