"""The ``causal-hcc`` command.

Bad input exits with status 2 and one line on stderr (no traceback unless
``--debug``); no half-written output folder is left behind.
"""
from __future__ import annotations

import os
import signal
import sys


def _exit_on_signal(signum: int, frame: object) -> None:
    """Start-up and shut-down of the command: nothing is held yet (or any more), so leave at once."""
    try:
        os.write(2, b"interrupted\n" if signum == signal.SIGINT else b"terminated\n")
    finally:
        os._exit(128 + signum)


def _install_early_signal_handlers() -> None:
    """SIGINT/SIGTERM exit 130/143 with one line from the first line of the command on (no traceback while
    typer, pandas & co. are imported); :func:`causal_hcc._process.handle_signals` takes over around each
    command and restores these afterwards."""
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, _exit_on_signal)


# only as the command (console script or python -m), never when a program imports this module
if __name__ == "__main__" or os.path.basename(sys.argv[0] if sys.argv else "") == "causal-hcc":
    _install_early_signal_handlers()

import contextlib  # noqa: E402
import json  # noqa: E402
import traceback  # noqa: E402
from typing import Any, Callable, Iterator, Optional  # noqa: E402

import typer  # noqa: E402
from typer.core import TyperGroup  # noqa: E402

try:  # typer >= 0.20 vendors click as typer._click
    from typer._click import exceptions as _click_exc
except ImportError:  # pragma: no cover - older typer uses click itself
    from click import exceptions as _click_exc

from causal_hcc.errors import CausalHCCError, OutputError, SpecError, short  # noqa: E402


class _OneLineGroup(TyperGroup):
    """Usage errors as one line (``error: ...``), not click's/rich's five-line box; exit 2."""

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        try:
            rv = super().main(args=args, prog_name=prog_name, complete_var=complete_var, standalone_mode=False,
                              **extra)
        except _click_exc.NoArgsIsHelpError as e:  # the help is on stdout already
            if e.format_message().strip():
                typer.echo(e.format_message(), err=True)
            rv = 2
        except _click_exc.ClickException as e:
            ctx = getattr(e, "ctx", None)
            names = []
            while ctx is not None and ctx.parent is not None:
                names.append(ctx.info_name)
                ctx = ctx.parent
            path = " ".join(["causal-hcc", *reversed(names)])
            where = f" (see '{path} --help')"
            msg = short(" ".join(e.format_message().split()), 300)
            typer.echo(f"error: {msg}{where}", err=True)
            rv = e.exit_code
        except typer.Abort:
            typer.echo("interrupted", err=True)
            rv = 130
        if not standalone_mode:
            return rv
        sys.exit(rv if isinstance(rv, int) else 0)


app = typer.Typer(cls=_OneLineGroup, add_completion=False, no_args_is_help=True,
                  help="Re-estimate a treatment effect under many designs and adjustments, side by side.")

_DEBUG = {"on": False}


def _fail(err: BaseException) -> None:
    if _DEBUG["on"]:
        traceback.print_exception(err)
    if isinstance(err, CausalHCCError):
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(code=2)
    if isinstance(err, MemoryError):
        typer.echo("error: out of memory; use fewer --n-jobs or bootstrap replicates, a smaller data file, "
                   "or a machine with more memory", err=True)
        raise typer.Exit(code=2)
    if isinstance(err, OSError) and getattr(err, "filename", None) is not None:
        name = short(os.fsdecode(err.filename), 160)
        typer.echo(f"error: '{name}': {err.strerror or type(err).__name__}", err=True)
        raise typer.Exit(code=2)
    msg = short(" ".join(str(err).split()) or type(err).__name__, 500)
    typer.echo(f"internal error: {type(err).__name__}: {msg} (rerun with --debug for the traceback)", err=True)
    raise typer.Exit(code=1)


@contextlib.contextmanager
def _warnings_policy(quiet: bool) -> Iterator[None]:
    """``-q``: no warnings at all (also in worker processes); otherwise one line each."""
    import logging
    import warnings

    env = os.environ.get("PYTHONWARNINGS")
    levels = {n: logging.getLogger(n).level for n in ("matplotlib", "distributed")}
    with warnings.catch_warnings():
        if quiet:
            warnings.simplefilter("ignore")
            os.environ["PYTHONWARNINGS"] = "ignore"  # loky/Dask workers are fresh interpreters
            for n in levels:
                logging.getLogger(n).setLevel(logging.ERROR)
        else:
            def show(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001
                sys.stderr.write(f"warning: {category.__name__}: {short(message, 300)}\n")

            warnings.showwarning = show
        try:
            yield
        finally:
            if env is None:
                os.environ.pop("PYTHONWARNINGS", None)
            else:
                os.environ["PYTHONWARNINGS"] = env
            for n, lv in levels.items():
                logging.getLogger(n).setLevel(lv)


def _guard(fn: Callable[[], None], *, quiet: bool = False) -> None:
    from causal_hcc._process import Interrupted, handle_signals, worker_guard

    code: int | None = None
    try:
        with _warnings_policy(quiet), handle_signals(), worker_guard():
            fn()
    except typer.Exit:
        raise
    except Interrupted as sig:
        code = sig.code
    except KeyboardInterrupt:  # raised by code, not by a signal (the handler turns those into Interrupted)
        typer.echo("interrupted", err=True)
        raise typer.Exit(code=130) from None
    except BaseException as err:  # noqa: BLE001 - one line per the CLI contract
        _fail(err)
    if code is not None:  # a signal: workers are gone, temporaries removed; leave without waiting on pools
        from causal_hcc._process import kill_children

        kill_children(timeout=1.0)  # any worker a Dask nanny restarted meanwhile
        typer.echo("interrupted" if code == 130 else "terminated", err=True)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _formats(value: str) -> tuple[str, ...]:
    fm = tuple(f.strip() for f in value.split(",") if f.strip())
    bad = [f for f in fm if f not in ("html", "md", "pdf")]
    if bad:
        raise CausalHCCError(f"--format: unknown format(s) {short(', '.join(bad))}; valid: html, md, pdf")
    return fm


def _spec_inputs(spec_path: str, s: Any) -> list[str]:
    """Every input file a spec names (spec, data, published tables): never to be written over."""
    out = [spec_path]
    path = s.data_path()
    if path != "twin":
        out.append(path)
    if s.visits is not None and s.visits.path is not None:
        out.append(s.visits_path())
    if s.published:
        pub = s.published
        if not os.path.isabs(pub) and os.path.exists(os.path.join(s.base_dir, pub)):
            pub = os.path.join(s.base_dir, pub)
        out.append(pub)
    return out


def _no_empty_output(output: str | None, option: str = "--output") -> None:
    """An empty ``--output ''`` is a mistake (not "use the default"): one line."""
    if output is not None and not output.strip():
        raise OutputError(f"{option}: empty path; give a folder name, or leave {option} out for the default")


def _at_most(option: str, value: int, limit: int, unit: str) -> None:
    """A loop count given on the command line, over its documented limit: one line naming it."""
    from causal_hcc.limits import over

    if value is not None and value > limit:
        raise SpecError(over(option, value, limit, unit))


def _say(quiet: bool) -> Callable[[str], None]:
    return (lambda m: None) if quiet else (lambda m: typer.echo(m, err=True))


@app.callback()
def _main(debug: bool = typer.Option(False, "--debug", help="Show tracebacks.")) -> None:
    _DEBUG["on"] = debug


@app.command()
def run(spec: str = typer.Argument(..., help="Analysis spec (YAML)."),
        output: Optional[str] = typer.Option(None, "--output", "-o", help="Output folder (default: spec's output)."),
        force: bool = typer.Option(False, "--force",
                                   help="Replace an existing output folder (only one causal-hcc wrote)."),
        n_jobs: Optional[int] = typer.Option(None, "--n-jobs", help="Parallel bootstrap workers."),
        fmt: str = typer.Option("", "--format", help="Report formats, e.g. html,md,pdf (default: spec's)."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress lines, no warnings."),
        debug: bool = typer.Option(False, "--debug", help="Show tracebacks.")) -> None:
    """Run every strategy of SPEC and write estimates.csv, results.json and the report."""
    _DEBUG["on"] = _DEBUG["on"] or debug

    def go() -> None:
        from causal_hcc._atomic import reserve
        from causal_hcc._process import cap_jobs
        from causal_hcc.config import load_spec
        from causal_hcc.pipeline import require_pdf_printer, run_analysis, write_outputs

        _no_empty_output(output)
        s = load_spec(spec)
        folder = output if output is not None else s.output_dir()
        formats = _formats(fmt) if fmt else tuple(s.report.formats)
        require_pdf_printer(formats)  # a requested PDF without Chromium fails now, not after the fitting
        inputs = _spec_inputs(spec, s)
        jobs = cap_jobs(s.n_jobs if n_jobs is None else n_jobs, max(1, s.bootstrap.replicates), _say(quiet))
        say = None if quiet else (lambda m: typer.echo(f"  {m}", err=True))
        with reserve(folder, force=force, inputs=inputs):  # everything knowable is checked before fitting
            result = run_analysis(s, progress=say, n_jobs=jobs)
            write_outputs(result, folder, force=force, formats=formats, inputs=inputs)
        typer.echo(folder)

    _guard(go, quiet=quiet)


@app.command()
def validate(spec: str = typer.Argument(..., help="Analysis spec (YAML).")) -> None:
    """Check SPEC and its data; run nothing."""

    def go() -> None:
        from causal_hcc.config import load_spec
        from causal_hcc.pipeline import check, data_warnings

        s = load_spec(spec)
        c, strategies = check(s)  # everything run checks before fitting
        events = ", ".join(f"{o} {int(c.event(o).sum())}" for o in c.outcome_names)
        typer.echo(f"ok: {c.n} patients ({int(c.treatment.sum())} treated), outcomes {', '.join(c.outcome_names)}, "
                   f"{len(strategies)} strategies: {', '.join(x.label for x in strategies)}")
        typer.echo(f"events: {events}; rows dropped: {c.rows_dropped}"
                   + (" (missing confounders, complete_case)" if c.rows_dropped else ""))
        if c.timeline is not None:  # the visits / person-period checks
            typer.echo(f"timeline: {c.timeline.summary()}")
            for w in c.timeline.warnings:
                typer.echo(f"warning: {w}")
        for w in data_warnings(s, c, strategies):
            typer.echo(f"warning: {w}", err=True)

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
        seen: dict[tuple, str] = {}  # an option shared by several components is described once
        pairs: set[frozenset] = set()
        reasons: dict[str, str] = {}
        for kind in ("preset", "design", "adjustment"):
            typer.echo(f"{kind}s:")
            for r in (r for r in rows if r["kind"] == kind):
                extra = f" = {r['design']} + {r['adjustment']}" if kind == "preset" else ""
                typer.echo(f"  {r['name']}{extra}: {r['description']}")
                for o in r.get("options", []):
                    if kind == "preset":
                        continue
                    key = (o["name"], o["type"], repr(o["default"]), o["doc"], tuple(o.get("choices") or ()))
                    head = f"      {o['name']} ({o['type']}, default {o['default']!r}):"
                    if key in seen:
                        typer.echo(f"{head} as for {seen[key]}")
                        continue
                    seen[key] = r["name"]
                    ch = f" one of {', '.join(map(str, o['choices']))};" if o.get("choices") else ""
                    typer.echo(f"{head}{ch} {o['doc']}")
                by_reason: dict[str, list[str]] = {}  # one line per reason, not one per refused partner
                for other, why in (r.get("incompatible") or {}).items():
                    if frozenset((r["name"], other)) in pairs:  # already said from the other side
                        continue
                    pairs.add(frozenset((r["name"], other)))
                    by_reason.setdefault(why, []).append(other)
                for why, others in by_reason.items():
                    said = reasons.setdefault(why, r["name"])
                    typer.echo(f"      not with {', '.join(others)}: " + (why if said == r["name"] else f"as for {said}"))

    _guard(go)


@app.command()
def audit(published: str = typer.Argument(..., help="Transcribed published tables (YAML)."),
          output: Optional[str] = typer.Option(None, "--output", "-o", help="Write audit.csv/audit.md here."),
          force: bool = typer.Option(False, "--force", help="Replace an existing output folder causal-hcc wrote.")
          ) -> None:
    """Recompute a paper's reported statistics from its own counts and flag inconsistencies."""

    def go() -> None:
        from causal_hcc._atomic import atomic_folder, reserve
        from causal_hcc.audit import run_audit

        _no_empty_output(output)
        with contextlib.ExitStack() as stack:
            if output:
                stack.enter_context(reserve(output, force=force, inputs=[published]))
            res = run_audit(published)
            typer.echo(res.as_markdown())
            if output:
                with atomic_folder(output, force=force, inputs=[published], command="audit") as tmp:
                    res.to_csv(os.path.join(tmp, "audit.csv"))
                    with open(os.path.join(tmp, "audit.md"), "w", encoding="utf-8") as fh:
                        fh.write(res.as_markdown())
                    with open(os.path.join(tmp, "audit.html"), "w", encoding="utf-8") as fh:
                        fh.write(res.as_html())

    _guard(go)


def twin_visits_path(output: str) -> str:
    """Where ``causal-hcc twin --output FILE`` writes the visits table: next to FILE, ``<stem>_visits<ext>``."""
    root, ext = os.path.splitext(output)
    return f"{root}_visits{ext or '.csv'}"


@app.command()
def twin(calibration: bool = typer.Option(False, "--calibration", help="Print the calibration table."),
         seeds: int = typer.Option(200, "--seeds", help="Seeds for the calibration."),
         seed: int = typer.Option(2024, "--seed"),
         output: Optional[str] = typer.Option(None, "--output", "-o",
                                              help="Write the twin cohort as CSV (a new file; never replaced)."),
         true_hr: Optional[float] = typer.Option(None, "--true-hr"),
         time_varying: bool = typer.Option(False, "--time-varying",
                                           help="Turn the time-varying confounder on (the performance status of "
                                                "configs/twin_tv.yaml defers surgery and raises the death hazard)."),
         competing: bool = typer.Option(False, "--competing",
                                        help="Add death from liver failure competing with cancer death (column "
                                             "death_cause: 1 cancer, 2 liver failure; configs/twin_competing.yaml)."),
         n: Optional[int] = typer.Option(None, "--n", help="Number of patients (default 150).")) -> None:
    """The digital twin: write a cohort, or print its calibration against the paper.

    With --output FILE.csv the visits table (performance status at each assessment) is written
    next to it as FILE_visits.csv (read by the spec's visits: {id: id, time: month, columns: [ecog_ge1]}).
    """

    def go() -> None:
        from causal_hcc._atomic import atomic_file, reserve
        from causal_hcc.twin import TwinParams, simulate_twin
        from causal_hcc.twin import calibration as calib

        from causal_hcc.limits import MAX_CALIBRATION_SEEDS

        _no_empty_output(output)
        _at_most("--seeds", seeds, MAX_CALIBRATION_SEEDS, "seeds")
        if not calibration and not output:
            raise CausalHCCError("twin: give --calibration and/or --output FILE")
        from causal_hcc.twin.params import COMPETING_PRESET, TIME_VARYING_PRESET

        visits_out = twin_visits_path(output) if output else None
        with contextlib.ExitStack() as stack:
            if output:  # checked before the (slow) calibration
                stack.enter_context(reserve(output, kind="file", create_parents=False, what="twin --output"))
                stack.enter_context(reserve(visits_out, kind="file", create_parents=False,
                                            what="twin --output (visits)"))
            kw: dict = {"seed": seed}
            if true_hr is not None:
                kw["true_hr"] = true_hr
            if n is not None:
                kw["n"] = n
            if time_varying:
                kw.update(TIME_VARYING_PRESET)
            if competing:
                kw.update(COMPETING_PRESET)
            params = TwinParams.from_spec(kw)
            if calibration:
                from causal_hcc.twin.recalibrate import recalibration_note

                tab = calib(n_seeds=seeds, params=params)
                note = recalibration_note(params)
                if note:
                    typer.echo(note)
                typer.echo(tab.to_string(index=False))
            if output:
                from causal_hcc.twin import simulate_twin_with_visits

                df, vis = simulate_twin_with_visits(params)
                with atomic_file(output, what="twin --output") as tmp:
                    df.to_csv(tmp, index=False)
                with atomic_file(visits_out, what="twin --output (visits)") as tmp:
                    vis.to_csv(tmp, index=False)
                typer.echo(output)
                typer.echo(visits_out)

    _guard(go)


@app.command()
def report(results_dir: str = typer.Argument(..., help="A run's output folder (with results.json)."),
           fmt: str = typer.Option("html,md", "--format", help="html,md,pdf"),
           output: Optional[str] = typer.Option(
               None, "--output", "-o", help="Write the report into this new folder instead of RESULTS_DIR.")) -> None:
    """Rebuild the report from results.json without refitting (files replaced atomically).

    Without --output the report files are replaced in RESULTS_DIR, which must
    be a folder causal-hcc wrote (its marker lists the files; files you added
    are kept, and an edited report file is never replaced).
    """

    def go() -> None:
        from causal_hcc._atomic import atomic_folder, update_folder
        from causal_hcc.pipeline import require_pdf_printer
        from causal_hcc.report.render import write_report
        formats = _formats(fmt)
        _no_empty_output(output)
        require_pdf_printer(formats)
        result = _load_results(results_dir)

        def draw(tmp: str) -> None:
            try:
                write_report(result, tmp, formats=formats)
            except (CausalHCCError, OSError, MemoryError):
                raise
            except Exception as err:  # noqa: BLE001 - the file passed the schema but holds values the report
                # cannot draw (an edited results.json): one line, exit 2, nothing written
                raise OutputError(f"report: '{short(os.path.join(results_dir, 'results.json'), 160)}' holds values "
                                  f"the report cannot use ({type(err).__name__}: "
                                  f"{short(' '.join(str(err).split()), 120)}); rerun 'causal-hcc run' to rebuild "
                                  "it") from None

        if output is not None:
            with atomic_folder(output, inputs=[results_dir], command="report") as tmp:
                draw(tmp)
            typer.echo(os.path.join(output, "report.html"))
            return
        with update_folder(results_dir) as tmp:
            draw(tmp)
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
             force: bool = typer.Option(False, "--force", help="Replace an existing output folder causal-hcc wrote."),
             quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar, no warnings.")) -> None:
    """Monte Carlo study: every strategy of SPEC on twin replicates; bias, SE, RMSE, coverage."""

    def go() -> None:
        from causal_hcc._atomic import reserve
        from causal_hcc._process import cap_jobs, cpu_count
        from causal_hcc.config import load_spec
        from causal_hcc.simstudy import run_simulation_spec

        if scheduler is not None:
            check_scheduler_address(scheduler)
        from causal_hcc.limits import MAX_BOOTSTRAP, MAX_SIMULATIONS

        _no_empty_output(output)
        _at_most("--replicates", replicates, MAX_SIMULATIONS, "replicates")
        _at_most("--bootstrap-replicates", bootstrap_replicates, MAX_BOOTSTRAP, "replicates")
        s = load_spec(spec)
        folder = output if output is not None else (s.output_dir().rstrip("/") + "-simulation")
        inputs = _spec_inputs(spec, s)
        jobs = cap_jobs(n_jobs, max(1, replicates), _say(quiet))
        workers = dask_local
        if isinstance(dask_local, int) and dask_local > min(cpu_count(), max(1, replicates)):
            workers = cap_jobs(dask_local, max(1, replicates), lambda m: _say(quiet)(m.replace("--n-jobs",
                                                                                               "--dask-local")))
        with reserve(folder, force=force, inputs=inputs):
            path = run_simulation_spec(s, folder, replicates=replicates, seed=seed, n_jobs=jobs,
                                       scheduler=scheduler, dask_local=workers, force=force,
                                       bootstrap_replicates=bootstrap_replicates, progress=not quiet)
        typer.echo(path)

    _guard(go, quiet=quiet)


def _load_results(folder: str) -> Any:
    """``results.json`` + ``curves.parquet`` of ``folder``, validated field by field; any problem as one line."""
    import stat

    import pandas as pd

    from causal_hcc.results import CURVES_FILE, AnalysisResult
    from causal_hcc.results_schema import MAX_BYTES, ResultsFileError, load_json, validate_curves, validate_results

    if not os.path.isdir(folder):
        raise OutputError(f"report: '{short(folder, 160)}' is not a folder")
    path = os.path.join(folder, "results.json")
    if not os.path.isfile(path):
        raise OutputError(f"report: no results.json in '{short(folder, 160)}'")
    rerun = "rerun 'causal-hcc run' to rebuild it"

    def bad(what: str, p: str = path) -> OutputError:
        return OutputError(f"report: '{short(p, 160)}' is not a complete causal-hcc results file ({what}); {rerun}")

    try:
        with open(path, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                raise bad("not a regular file")
            data = fh.read(MAX_BYTES + 1)
        if len(data) > MAX_BYTES:
            raise bad(f"larger than {MAX_BYTES // 2**20} MB")
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise OutputError(f"report: '{short(path, 160)}' is not UTF-8 text; it is not a causal-hcc results file") \
            from None
    try:
        raw = load_json(text)
    except json.JSONDecodeError as err:
        raise OutputError(f"report: '{short(path, 160)}' is not valid JSON (line {err.lineno}, column {err.colno}: "
                          f"{err.msg}); {rerun}") from None
    except (ValueError, RecursionError) as err:
        raise bad("nested too deeply" if isinstance(err, RecursionError) else short(str(err), 120)) from None
    try:
        if isinstance(raw, dict):
            for key in ("study", "spec", "records"):
                if key not in raw:
                    raise bad(f"missing key '{key}'")
        validate_results(raw)
        result = AnalysisResult.from_dict(raw)
    except ResultsFileError as err:
        raise bad(short(str(err), 200)) from None
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, RecursionError) as err:
        what = f"missing key {err}" if isinstance(err, KeyError) else short(" ".join(str(err).split()), 120)
        raise bad(what) from None
    cpath = os.path.join(folder, CURVES_FILE)
    if os.path.lexists(cpath):
        try:
            st = os.stat(cpath)
            if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_BYTES:
                raise bad("not a regular file of a sensible size", cpath)
            curves = pd.read_parquet(cpath)
            validate_curves(curves, len(result.records))
            result.attach_curves(curves)
        except ResultsFileError as err:
            raise bad(short(str(err), 200), cpath) from None
        except OutputError:
            raise
        except Exception as err:  # noqa: BLE001 - a damaged parquet file: one line naming it
            raise bad(short(" ".join(str(err).split()) or type(err).__name__, 120), cpath) from None
    return result


def check_scheduler_address(address: str) -> None:
    """``--scheduler``: PROTOCOL://HOST:PORT (tcp, tls, ws, wss, ucx) or HOST:PORT, else one line."""
    import re

    m = re.fullmatch(r"(?:(tcp|tls|ws|wss|ucx|inproc)://)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})", address)
    if not m or not 0 < int(m.group(3)) < 65536:
        raise SpecError(f"--scheduler '{short(address)}': expected a Dask scheduler address such as "
                        "tcp://host:8786")


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
