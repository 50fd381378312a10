"""Output safety (issue 15, items 1-3): inputs never touched, --force only on our folders,
atomic writes, stale temporaries cleaned, early checks, one writer at a time."""
from __future__ import annotations

import errno
import json
import os
import time
import shutil

import pytest

from causal_hcc import _atomic
from causal_hcc._atomic import MARKER, atomic_file, atomic_folder, clean_stale, reserve
from causal_hcc.errors import OutputError

from harden_support import cli


# ----------------------------------------------------------------- inputs are never written over
def test_force_on_the_folder_holding_the_data_refuses(case):
    before = case.snapshot()
    case.refused(cli("run", case.spec, "--output", case.root, "--force", "-q"),
                 f"error: output folder '{case.root}' contains the input '{case.spec}'; causal-hcc never replaces "
                 "a folder holding an input: choose another --output", before=before)


def test_force_on_the_data_file_refuses(case):
    before = case.snapshot()
    case.refused(cli("run", case.spec, "--output", case.data, "--force", "-q"),
                 f"error: output folder '{case.data}' is the input '{case.data}'; causal-hcc never writes over an "
                 "input: choose another --output", before=before)


def test_output_through_a_symlink_to_the_data_refuses(case):
    link = case.root / "alias.csv"
    link.symlink_to(case.data)
    before = case.snapshot()
    case.refused(cli("run", case.spec, "--output", link, "--force", "-q"),
                 startswith=f"error: output folder '{link}' is the input '{case.data}'", before=before)


def test_output_inside_a_data_folder_refuses(case, tmp_path):
    """A data *folder* (parquet dataset) may not receive the output either."""
    with pytest.raises(OutputError, match="lies inside the input"):
        _atomic.preflight(str(tmp_path / "ds" / "out"), inputs=[str(tmp_path / "ds")])


def test_force_on_the_spec_file_refuses(case):
    before = case.snapshot()
    case.refused(cli("run", case.spec, "--output", case.spec, "--force", "-q"),
                 startswith=f"error: output folder '{case.spec}' is the input '{case.spec}'", before=before)


# ----------------------------------------------------------------- --force replaces only our folders
def test_force_refuses_a_folder_causal_hcc_did_not_write(case):
    case.out.mkdir()
    (case.out / "thesis.docx").write_text("years of work")
    before = case.snapshot()
    case.refused(cli("run", case.spec, "--output", case.out, "--force", "-q"),
                 f"error: output folder '{case.out}' was not written by causal-hcc (no {MARKER} marker); --force "
                 "replaces only causal-hcc output folders: remove it yourself or choose another --output",
                 before=before)


def test_force_refuses_an_existing_file(case):
    f = case.root / "notes.txt"
    f.write_text("mine")
    before = case.snapshot()
    case.refused(cli("run", case.spec, "--output", f, "--force", "-q"),
                 f"error: output folder '{f}' is an existing file; causal-hcc never replaces a file: choose another "
                 "--output", before=before)


def test_force_refuses_our_folder_once_a_user_file_was_added(case):
    assert cli("run", case.spec, "--output", case.out, "-q").exit_code == 0
    (case.out / "my_notes.md").write_text("added by hand")
    before = case.snapshot()
    case.refused(cli("run", case.spec, "--output", case.out, "--force", "-q"),
                 f"error: output folder '{case.out}' holds 'my_notes.md' that causal-hcc did not write; --force "
                 "replaces only an unchanged causal-hcc output folder: move it first", before=before)


def test_force_refuses_a_symlink_to_our_folder(case):
    assert cli("run", case.spec, "--output", case.out, "-q").exit_code == 0
    link = case.root / "latest"
    link.symlink_to(case.out)
    before = case.snapshot()
    case.refused(cli("run", case.spec, "--output", link, "--force", "-q"),
                 startswith=f"error: output folder '{link}' is a symbolic link", before=before)


def test_force_replaces_our_own_folder_atomically(case):
    assert cli("run", case.spec, "--output", case.out, "-q").exit_code == 0
    first = json.loads((case.out / MARKER).read_text())
    r = cli("run", case.spec, "--output", case.out, "--force", "-q")
    assert r.exit_code == 0, r.stderr
    stamp = json.loads((case.out / MARKER).read_text())
    assert stamp["tool"] == "causal_hcc" and stamp["command"] == "run"
    listed = {f["path"]: f for f in stamp["files"]}
    assert "results.json" in listed and "report.html" in listed and stamp["marker_format"] == 2
    assert listed["results.json"]["sha256"] == _atomic.file_sha256(str(case.out / "results.json"))
    assert listed["results.json"]["size"] == (case.out / "results.json").stat().st_size
    assert stamp["written"] >= first["written"]
    assert sorted(os.listdir(case.root)) == ["cohort.csv", "out", "spec.yaml"]  # no temp, no lock, no old copy


def test_no_force_message_unchanged(case):
    case.out.mkdir()
    before = case.snapshot()
    case.refused(cli("run", case.spec, "--output", case.out, "-q"),
                 f"error: output folder '{case.out}' already exists; use --force to replace it", before=before)


# ----------------------------------------------------------------- twin / report / simulate / audit
def test_twin_never_overwrites_a_file(case):
    f = case.root / "existing.csv"
    f.write_text("precious\n")
    before = case.snapshot()
    case.refused(cli("twin", "--output", f),
                 f"error: twin --output '{f}' already exists; causal-hcc never replaces a file: remove it or choose "
                 "another name", before=before)


def test_twin_into_a_missing_folder(case):
    target = case.root / "nowhere" / "twin.csv"
    before = case.snapshot()
    case.refused(cli("twin", "--output", target),
                 f"error: twin --output '{target}': the folder '{target.parent}' does not exist; create it first",
                 before=before)


def test_twin_writes_atomically(case):
    target = case.root / "twin.csv"
    r = cli("twin", "--output", target)
    assert r.exit_code == 0, r.stderr
    assert target.read_text().startswith("id,") and len(target.read_text().splitlines()) == 151
    assert sorted(os.listdir(case.root)) == ["cohort.csv", "spec.yaml", "twin.csv", "twin_visits.csv"]
    assert (case.root / "twin_visits.csv").read_text().startswith("id,month,ecog_ge1,progressed\n")


def test_twin_never_overwrites_an_existing_visits_file(case):
    (case.root / "twin_visits.csv").write_text("precious\n")
    target = case.root / "twin.csv"
    before = case.snapshot()
    case.refused(cli("twin", "--output", target),
                 f"error: twin --output (visits) '{case.root / 'twin_visits.csv'}' already exists; causal-hcc never "
                 "replaces a file: remove it or choose another name", before=before)


def test_report_rebuild_is_atomic_and_keeps_the_folder_ours(case, monkeypatch):
    assert cli("run", case.spec, "--output", case.out, "-q").exit_code == 0
    html = (case.out / "report.html").read_bytes()
    # a failure half way through writing the report leaves the old report.html whole
    from causal_hcc.report import render

    real = render.render_markdown

    def boom(ctx):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(render, "render_markdown", boom)
    before = case.snapshot()
    case.refused(cli("report", case.out),
                 f"error: report folder '{case.out}': no space left on the disk (nothing was written); free some "
                 "space or choose another --output", before=before)
    assert (case.out / "report.html").read_bytes() == html
    monkeypatch.setattr(render, "render_markdown", real)
    r = cli("report", case.out, "--format", "html,md")
    assert r.exit_code == 0, r.stderr
    assert sorted(os.listdir(case.out)) == sorted(["estimates.csv", "figures", "report.html", "report.md",
                                                   "results.json", "curves.parquet", MARKER])
    # and --force still accepts the folder afterwards (the marker's file list follows the report)
    assert cli("run", case.spec, "--output", case.out, "--force", "-q").exit_code == 0


def test_report_on_a_corrupt_results_json(case):
    assert cli("run", case.spec, "--output", case.out, "-q").exit_code == 0
    p = case.out / "results.json"
    p.write_text(p.read_text()[:500])
    before = case.snapshot()
    err = case.refused(cli("report", case.out), before=before,
                       startswith=f"error: report: '{p}' is not valid JSON (line ")
    assert err.endswith("rerun 'causal-hcc run' to rebuild it")
    p.write_text('{"study": "x"}')
    case.refused(cli("report", case.out),
                 f"error: report: '{p}' is not a complete causal-hcc results file (missing key 'spec'); rerun "
                 "'causal-hcc run' to rebuild it")
    p.write_bytes(b"\xff\xfe\x00garbage")
    case.refused(cli("report", case.out), startswith=f"error: report: '{p}' is not")


def test_report_on_a_missing_folder(case):
    case.refused(cli("report", case.root / "nope"), f"error: report: '{case.root / 'nope'}' is not a folder")


def test_audit_output_into_the_published_file_refuses(tmp_path):
    pub = tmp_path / "zhang.yaml"
    shutil.copy(os.path.join(os.path.dirname(__file__), "..", "..", "configs", "published", "zhang2024.yaml"), pub)
    before = pub.read_bytes()
    r = cli("audit", pub, "--output", tmp_path, "--force")
    assert r.exit_code == 2 and r.stderr.startswith(f"error: output folder '{tmp_path}' contains the input")
    assert pub.read_bytes() == before


# ----------------------------------------------------------------- stale temporaries
def _dead_pid() -> int:
    import subprocess
    import sys

    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_stale_temporaries_of_dead_runs_are_removed_only_if_ours(case):
    dead = _dead_pid()
    ours = case.root / f".out.causal_hcc-tmp-{dead}-0123abcd"
    ours.mkdir()
    (ours / MARKER).write_text(json.dumps({"tool": "causal_hcc", "temporary": "0123abcd", "pid": dead}))
    (ours / "results.json").write_text("{}")
    older = case.root / f".out.causal_hcc-tmp-{dead}-0123abce"  # a temporary of the version before the hex
    older.mkdir()
    (older / MARKER).write_text(json.dumps({"tool": "causal_hcc", "pid": dead}))
    empty = case.root / f".out.causal_hcc-tmp-{dead}-89abcdef"  # killed between mkdir and marker
    empty.mkdir()
    userfile = case.root / f".twin.csv.causal_hcc-tmp-{dead}-00ff00ff"  # a *file* with our pattern: a user's
    userfile.write_text("partial")
    alive = case.root / f".out.causal_hcc-tmp-{os.getpid()}-11111111"  # a live run's: kept
    alive.mkdir()
    (alive / MARKER).write_text(json.dumps({"tool": "causal_hcc"}))
    foreign = case.root / f".out.causal_hcc-tmp-{dead}-22222222"  # right name, no marker, not empty: kept
    foreign.mkdir()
    (foreign / "data.csv").write_text("someone else's")
    forged = case.root / f".out.causal_hcc-tmp-{dead}-33333333"  # a marker naming another temporary: kept
    forged.mkdir()
    (forged / MARKER).write_text(json.dumps({"tool": "causal_hcc", "temporary": "44444444", "pid": 1}))
    (forged / "thesis.docx").write_text("years of work")
    lookalike = case.root / ".out.tmp-abc"  # not our pattern: kept
    lookalike.mkdir()
    r = cli("run", case.spec, "--output", case.out, "-q")
    assert r.exit_code == 0, r.stderr
    left = set(os.listdir(case.root))
    assert ours.name not in left and older.name not in left and empty.name not in left
    assert {alive.name, foreign.name, lookalike.name, userfile.name, forged.name} <= left
    assert (foreign / "data.csv").read_text() == "someone else's"
    assert userfile.read_text() == "partial" and (forged / "thesis.docx").read_text() == "years of work"


def test_clean_stale_keeps_other_hosts(tmp_path):
    dead = _dead_pid()
    d = tmp_path / f".x.causal_hcc-tmp-{dead}-0123abcd"
    d.mkdir()
    (d / MARKER).write_text(json.dumps({"tool": "causal_hcc", "host": "another-machine"}))
    assert clean_stale(str(tmp_path)) == []
    assert d.exists()


# ----------------------------------------------------------------- stop early
@pytest.fixture
def no_fitting(monkeypatch):
    """Fail the test if the analysis starts."""
    import causal_hcc.pipeline as pl

    def fit(*a, **k):
        raise AssertionError("the analysis started before the output was checked")

    monkeypatch.setattr(pl, "run_analysis", fit)


def test_parent_is_a_file(case, no_fitting):
    f = case.root / "notes.txt"
    f.write_text("x")
    target = f / "sub" / "out"
    before = case.snapshot()
    case.refused(cli("run", case.spec, "--output", target, "-q"),
                 f"error: output folder '{target}': '{f}' is a file, not a folder", before=before)


def test_study_name_too_long(case, no_fitting, monkeypatch):
    monkeypatch.chdir(case.root)
    case.spec.write_text(case.spec.read_text().replace("study: user-demo", "study: " + "x" * 300))
    before = case.snapshot()
    err = case.refused(cli("run", case.spec, "-q"), before=before, startswith="error: output folder 'reports/xxx")
    assert err.endswith("' is 300 bytes long; this file system allows 255: choose a shorter --output (or study name)")
    assert len(err) < 600  # the long name is quoted shortened


def test_unwritable_place(case, no_fitting, monkeypatch):
    monkeypatch.setattr(_atomic.os, "access", lambda p, mode: False)
    before = case.snapshot()
    case.refused(cli("run", case.spec, "--output", case.root / "a" / "b", "-q"),
                 f"error: output folder '{case.root / 'a' / 'b'}': cannot write in '{case.root}' (the folder is "
                 "read-only for you: permission denied); choose a folder you can write to", before=before)


def test_low_free_disk(case, no_fitting, monkeypatch):
    monkeypatch.setattr(_atomic.shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10**9, 10**9 - 2**20, 2**20))
    before = case.snapshot()
    case.refused(cli("run", case.spec, "--output", case.out, "-q"),
                 f"error: output folder '{case.out}': only 1.0 MB free on its disk, causal-hcc needs at least 32.0 MB; "
                 "free some space or choose another --output", before=before)


def test_disk_full_while_writing(case, monkeypatch):
    import causal_hcc.pipeline as pl

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pl.json, "dump", full)
    before = case.snapshot()
    case.refused(cli("run", case.spec, "--output", case.out / "sub", "-q"),
                 f"error: output folder '{case.out / 'sub'}': no space left on the disk (nothing was written); free "
                 "some space or choose another --output", before=before)  # also: created parents removed


def test_mkdir_failure_becomes_one_line(case, monkeypatch):
    def ro(path, *a, **k):
        raise OSError(errno.EROFS, "Read-only file system", path)

    monkeypatch.setattr(_atomic.os, "mkdir", ro)
    before = case.snapshot()
    case.refused(cli("run", case.spec, "--output", case.out, "-q"),
                 f"error: output folder '{case.out}': the file system is read-only; choose another --output",
                 before=before)


# ----------------------------------------------------------------- one writer at a time
def test_second_writer_exits_2_while_another_holds_the_lock(case):
    """Another run's lock (a separate open file description, as another process has) is respected."""
    import fcntl

    lock = case.root / ".out.causal_hcc-lock"
    fd = os.open(lock, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.write(fd, b"4242")
        r = cli("run", case.spec, "--output", case.out, "-q")
    finally:
        os.close(fd)
    case.refused(r, f"error: output folder '{case.out}' is being written by another causal-hcc run (pid 4242); "
                    "wait for it to finish or choose another --output")
    assert not case.out.exists()
    # the other run died without removing its lock file: the next run takes the lock and removes it
    assert cli("run", case.spec, "--output", case.out, "-q").exit_code == 0
    assert sorted(os.listdir(case.root)) == ["cohort.csv", "out", "spec.yaml"]


def test_lock_is_reentrant_and_released(tmp_path):
    t = str(tmp_path / "o")
    with reserve(t):
        with atomic_folder(t) as tmp:
            open(os.path.join(tmp, "a.txt"), "w").close()
    assert sorted(os.listdir(tmp_path)) == ["o"]
    assert sorted(os.listdir(tmp_path / "o")) == [MARKER, "a.txt"]


def test_atomic_file_noreplace_race(tmp_path):
    """A file that appears while we write is never replaced."""
    t = tmp_path / "x.csv"
    with pytest.raises(OutputError, match="already exists; causal-hcc never replaces a file"):
        with atomic_file(str(t)) as tmp:
            open(tmp, "w").write("ours")
            t.write_text("theirs")
    assert t.read_text() == "theirs" and sorted(os.listdir(tmp_path)) == ["x.csv"]


def test_atomic_folder_noreplace_race(tmp_path):
    t = tmp_path / "o"
    with pytest.raises(OutputError, match="already exists; use --force"):
        with atomic_folder(str(t)) as tmp:
            open(os.path.join(tmp, "a"), "w").close()
            t.mkdir()
    assert os.listdir(t) == [] and sorted(os.listdir(tmp_path)) == ["o"]


def test_simulate_output_over_the_spec_folder_refuses_before_simulating(case, monkeypatch):
    import causal_hcc.simstudy as ss

    monkeypatch.setattr(ss, "run_simulation_spec", lambda *a, **k: (_ for _ in ()).throw(AssertionError("ran")))
    before = case.snapshot()
    case.refused(cli("simulate", case.spec, "-r", "2", "--output", case.root, "--force", "-q"),
                 startswith=f"error: output folder '{case.root}' contains the input", before=before)


def test_python_api_write_outputs_force_keeps_user_files(case):
    """write_outputs without inputs still never replaces a folder holding files it did not write."""
    from causal_hcc.config import load_spec
    from causal_hcc.pipeline import run_analysis, write_outputs

    result = run_analysis(load_spec(case.spec))
    write_outputs(result, str(case.out))
    (case.out / "cohort_copy.csv").write_bytes(case.data.read_bytes())
    with pytest.raises(OutputError, match="holds 'cohort_copy.csv' that causal-hcc did not write"):
        write_outputs(result, str(case.out), force=True)
    assert (case.out / "cohort_copy.csv").read_bytes() == case.data.read_bytes()


def test_interrupt_while_writing_leaves_nothing(case, monkeypatch):
    """KeyboardInterrupt in the middle of the write: exit 130, old output kept, no temporary, no lock."""
    assert cli("run", case.spec, "--output", case.out, "-q").exit_code == 0
    import causal_hcc.pipeline as pl

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(pl, "write_report_files", interrupted)
    before = case.snapshot()
    case.refused(cli("run", case.spec, "--output", case.out, "--force", "-q"), "interrupted", code=130, before=before)


def test_force_refuses_an_output_from_before_hashes(case):
    """Folders of earlier versions (no marker, or a marker listing names without hashes) cannot prove that
    their files are unchanged: --force refuses them (remove them yourself once)."""
    assert cli("run", case.spec, "--output", case.out, "-q").exit_code == 0
    stamp = json.loads((case.out / MARKER).read_text())
    stamp.pop("marker_format")
    stamp["files"] = [f["path"] for f in stamp["files"]]
    (case.out / MARKER).write_text(json.dumps(stamp))
    before = case.snapshot()
    case.refused(cli("run", case.spec, "--output", case.out, "--force", "-q"),
                 f"error: output folder '{case.out}': its {MARKER} marker cannot be trusted (written by an earlier "
                 "causal-hcc version, without file hashes); --force replaces only a folder whose marker lists every "
                 "file with its hash: remove it yourself or choose another --output", before=before)
    (case.out / MARKER).unlink()  # as written before markers
    before = case.snapshot()
    case.refused(cli("run", case.spec, "--output", case.out, "--force", "-q"),
                 startswith=f"error: output folder '{case.out}' was not written by causal-hcc", before=before)


@pytest.mark.parametrize("has_renameat2", [True, False])
def test_noreplace_without_renameat2_or_links(tmp_path, monkeypatch, has_renameat2):
    """The portable fallbacks keep the no-overwrite rule."""
    if not has_renameat2:
        monkeypatch.setattr(_atomic, "_renameat2", None)

        def no_links(a, b):
            raise OSError(errno.EPERM, "Operation not permitted")

        monkeypatch.setattr(_atomic.os, "link", no_links)
    src = tmp_path / "a"
    src.write_text("new")
    dst = tmp_path / "b"
    dst.write_text("old")
    with pytest.raises(FileExistsError):
        _atomic._move_noreplace(str(src), str(dst))
    assert dst.read_text() == "old"
    _atomic._move_noreplace(str(src), str(tmp_path / "c"))
    assert (tmp_path / "c").read_text() == "new" and not src.exists()
    d1, d2 = tmp_path / "d1", tmp_path / "d2"
    d1.mkdir()
    d2.mkdir()
    (d2 / "keep").write_text("x")
    with pytest.raises(OSError):
        _atomic._move_noreplace(str(d1), str(d2))
    assert (d2 / "keep").exists()
    old = _atomic._swap_in(str(d1), str(d2))
    assert not (d2 / "keep").exists() and os.path.exists(os.path.join(old, "keep"))


def test_clean_stale_keeps_legacy_lookalikes(tmp_path):
    """Names like `.NAME.tmp-XXXXXXXX` (tempfile.mkdtemp's, which earlier versions used) are common: whatever
    they hold and however old they are, they are never removed."""
    old = time.time() - 2 * 3600
    made = []
    for name, files in ((".out.tmp-ab12CD_9", {"estimates.csv": "x", "results.json": "{}"}),
                        (".out.old-zz99yy88", {}), (".out.tmp-other123", {"estimates.csv": "x", "notes.txt": "mine"})):
        d = tmp_path / name
        d.mkdir()
        for f, text in files.items():
            (d / f).write_text(text)
        os.utime(d, (old, old))
        made.append(d)
    assert clean_stale(str(tmp_path)) == []
    assert all(d.exists() for d in made)
