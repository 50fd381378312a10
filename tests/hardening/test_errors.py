"""Every OS, decoding and usage problem on a path the user gave: exit 2, one line (issue 15, items 5-6)."""
from __future__ import annotations

import codecs
import os
import warnings

import numpy as np
import pytest

from causal_hcc import _process
from causal_hcc.config import MAX_NODES, load_spec
from causal_hcc.errors import CausalHCCError, SpecError, short

from harden_support import cli


# ----------------------------------------------------------------- the spec file itself
def _bomb(levels: int = 9) -> str:
    """The classic "billion laughs": 9 levels of 9 aliases, 467 bytes, 9**9 values when expanded."""
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        prev, cur = chr(96 + i), chr(97 + i)
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("kind, content, message", [
    ("latin1", "study: café\n".encode("latin-1"),
     "is not UTF-8 text (byte 0xe9 on line 1); save it as UTF-8"),
    ("utf16_no_bom", "study: x\nstrategies: [naive]\n".encode("utf-16-le"),
     "looks like UTF-16 without a byte-order mark; save it as UTF-8"),
    ("binary", bytes(range(256)) * 4, "is a binary file, not YAML text"),
    ("alias_bomb", _bomb().encode(),
     f"YAML aliases expand to more than {MAX_NODES:,} values (an alias bomb?); write the values out"),
    ("many_aliases", ("a: &a 1\nb: [" + ",".join(["*a"] * 300) + "]\n").encode(),
     "more than 200 YAML aliases (*name); write the values out"),
    ("bad_yaml", b"study: [unclosed\n", "invalid YAML at line 2, column 1: expected ',' or ']', but got '<stream end>'"),
])
def test_spec_file_problems(case, kind, content, message):
    case.spec.write_bytes(content)
    before = case.snapshot()
    case.refused(cli("run", case.spec, "--output", case.out, "-q"),
                 f"error: spec file '{case.spec}' {message}" if not message.startswith(("YAML", "more", "invalid"))
                 else f"error: spec file '{case.spec}': {message}", before=before)


def test_alias_bomb_is_467_bytes_and_fast():
    import time

    text = _bomb()
    assert len(text.encode()) <= 467
    t0 = time.perf_counter()
    with pytest.raises(SpecError) as e:
        from causal_hcc.config import read_spec_file  # noqa: F401
        import tempfile

        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as fh:
            fh.write(text)
        try:
            load_spec(fh.name)
        finally:
            os.unlink(fh.name)
    assert time.perf_counter() - t0 < 2 and len(str(e.value)) < 300


def test_utf16_with_bom_is_read(case):
    case.spec.write_bytes(codecs.BOM_UTF16_LE + case.spec.read_text().encode("utf-16-le"))
    assert load_spec(case.spec).study == "user-demo"


def test_spec_is_a_folder(case):
    d = case.root / "spec.d"
    d.mkdir()
    case.refused(cli("run", d, "-q"), f"error: spec file '{d}' is a folder, not a YAML file")


def test_spec_missing(case):
    case.refused(cli("validate", case.root / "nope.yaml"), f"error: spec file '{case.root / 'nope.yaml'}' not found")


def test_spec_too_large(case):
    case.spec.write_text("# " + "x" * 1_100_000 + "\n")
    case.refused(cli("run", case.spec, "-q"),
                 f"error: spec file '{case.spec}' is 1,100,003 bytes; a spec is at most 1,000,000 (data go in "
                 "data.path, not in the spec)")


def test_huge_value_in_spec_is_quoted_short(case):
    case.spec.write_text(case.spec.read_text().replace("  - naive\n", "  - " + "z" * 200_000 + "\n"))
    err = case.refused(cli("run", case.spec, "-q"))
    assert len(err) <= 2100 and err.startswith("error: strategies[0]: unknown")


def test_error_messages_are_capped():
    assert len(str(CausalHCCError("x" * 10**7))) < 2100
    assert short("y" * 1000, 10) == "yyyyyyyyyy... (1,000 characters)"
    assert short("a\nb") == "a b"


def test_data_file_is_a_folder(case):
    d = case.root / "data.d"
    d.mkdir()
    case.spec.write_text(case.spec.read_text().replace(str(case.data), str(d)))
    err = case.refused(cli("run", case.spec, "--output", case.out, "-q"))
    assert str(d) in err


# ----------------------------------------------------------------- spec values met later
def test_cyclic_dag_is_rejected_before_fitting(case, monkeypatch):
    case.spec.write_text(case.spec.read_text() + "sensitivity:\n  dag: 'digraph { a -> b; b -> c; c -> a; }'\n")
    before = case.snapshot()
    case.refused(cli("run", case.spec, "--output", case.out, "-q"),
                 "error: sensitivity.dag: the graph has a cycle (a -> b -> c -> a); a causal DAG must be acyclic",
                 before=before)


def test_score_column_holding_text(case):
    import pandas as pd

    df = pd.read_csv(case.data)
    df["ps"] = 0.3
    df["ps"] = df["ps"].astype(object)
    df.loc[4, "ps"] = "high"
    df.to_csv(case.data, index=False)
    case.spec.write_text(case.spec.read_text().replace("  - naive\n", "  - {name: iptw, score_column: ps}\n"))
    before = case.snapshot()
    err = case.refused(cli("run", case.spec, "--output", case.out, "-q"), before=before)
    assert err.endswith("column 'ps' must be numeric; found 'high' at data row 5"), err


def test_scheduler_not_a_url(case):
    case.refused(cli("simulate", case.spec, "--scheduler", "not-a-url", "-r", "2", "-q"),
                 "error: --scheduler 'not-a-url': expected a Dask scheduler address such as tcp://host:8786")


@pytest.mark.parametrize("address", ["tcp://127.0.0.1:8786", "localhost:8786", "tls://[::1]:9000"])
def test_scheduler_addresses_accepted(address):
    from causal_hcc.cli import check_scheduler_address

    check_scheduler_address(address)


# ----------------------------------------------------------------- usage errors: one line
@pytest.mark.parametrize("args, line", [
    (["run"], "error: Missing argument 'spec'. (see 'causal-hcc run --help')"),
    (["run", "x.yaml", "--bogus"], "error: No such option: --bogus (see 'causal-hcc run --help')"),
    (["frobnicate"], "error: No such command 'frobnicate'. (see 'causal-hcc --help')"),
    (["run", "x.yaml", "--n-jobs", "many"], "error: Invalid value for '--n-jobs': Input should be a valid integer, "
                                             "unable to parse string as an integer (see 'causal-hcc run --help')"),
])
def test_usage_errors_are_one_line(args, line):
    r = cli(*args)
    assert r.exit_code == 2 and r.stderr == line + "\n"


def test_internal_error_message_is_capped(case, monkeypatch):
    import causal_hcc.config as config

    def boom(path):
        raise RuntimeError("v" * 100_000)

    monkeypatch.setattr(config, "load_spec", boom)
    r = cli("validate", case.spec)
    assert r.exit_code == 1 and r.stderr.count("\n") == 1 and len(r.stderr) < 700


def test_memory_error_is_exit_2_with_what_to_do(case, monkeypatch):
    import causal_hcc.config as config

    def oom(path):
        raise MemoryError()

    monkeypatch.setattr(config, "load_spec", oom)
    case.refused(cli("validate", case.spec),
                 "error: out of memory; use fewer --n-jobs or bootstrap replicates, a smaller data file, or a "
                 "machine with more memory")


def test_os_error_on_a_user_path_is_one_line(case, monkeypatch):
    import causal_hcc.config as config

    def denied(path):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(config, "load_spec", denied)
    case.refused(cli("validate", case.spec), f"error: '{case.spec}': Permission denied")


# ----------------------------------------------------------------- warnings and -q
def test_quiet_silences_numpy_and_matplotlib_warnings(case, monkeypatch):
    import causal_hcc.pipeline as pl

    real = pl.run_analysis

    def noisy(*a, **k):
        np.log(np.array([-1.0]))  # RuntimeWarning: invalid value
        warnings.warn("a matplotlib-style warning", UserWarning)
        return real(*a, **k)

    monkeypatch.setattr(pl, "run_analysis", noisy)
    r = cli("run", case.spec, "--output", case.out, "-q")
    assert r.exit_code == 0 and r.stderr == ""
    r = cli("run", case.spec, "--output", case.root / "loud")
    assert r.exit_code == 0
    lines = [x for x in r.stderr.splitlines() if x.startswith("warning:")]
    assert lines == ["warning: RuntimeWarning: invalid value encountered in log",
                     "warning: UserWarning: a matplotlib-style warning"]
    assert os.environ.get("PYTHONWARNINGS") != "ignore"  # restored after the command


# ----------------------------------------------------------------- --n-jobs capped
@pytest.mark.parametrize("n_jobs, items, cpus, expected, note", [
    (500, 20, 2, 2, "note: --n-jobs 500 capped at 2 (2 CPUs and 20 work items)"),
    (8, 3, 16, 3, "note: --n-jobs 8 capped at 3 (3 work items)"),
    (4, 100, 2, 2, "note: --n-jobs 4 capped at 2 (2 CPUs)"),
    (2, 100, 4, 2, None),
    (-1, 100, 4, 4, None),
    (1, 1, 1, 1, None),
])
def test_cap_jobs(monkeypatch, n_jobs, items, cpus, expected, note):
    monkeypatch.setattr(_process, "cpu_count", lambda: cpus)
    notes = []
    assert _process.cap_jobs(n_jobs, items, notes.append) == expected
    assert notes == ([note] if note else [])


def test_run_notes_the_cap(case, monkeypatch):
    monkeypatch.setattr(_process, "cpu_count", lambda: 2)
    seen = {}
    import causal_hcc.pipeline as pl

    real = pl.run_analysis

    def spy(spec, **k):
        seen["n_jobs"] = k["n_jobs"]
        return real(spec, **k)

    monkeypatch.setattr(pl, "run_analysis", spy)
    r = cli("run", case.spec, "--output", case.out, "--n-jobs", "500")
    assert r.exit_code == 0 and seen["n_jobs"] == 2
    assert "note: --n-jobs 500 capped at 2 (2 CPUs and 20 work items)" in r.stderr.splitlines()
