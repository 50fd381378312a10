"""Issue 22 item 2: the marker protects only what causal-hcc wrote.

The marker lists every file with its size and SHA-256; --force removes only
listed files whose hash still matches and refuses anything else (a forged or
malformed marker, an unlisted file, an edited one); `report DIR` writes only
into a marked folder (or a new one with --output), never removes a file it did
not write and never replaces an edited one; the lock file and temporaries
never touch a user's file with a look-alike name.
"""
from __future__ import annotations

import json
import os

import pytest

from causal_hcc import _atomic
from causal_hcc._atomic import MARKER

from harden_support import cli


def _user_folder(case, marker: object) -> None:
    case.out.mkdir()
    (case.out / "thesis.docx").write_text("years of work")
    (case.out / "results.json").write_text("{}")
    (case.out / MARKER).write_text(marker if isinstance(marker, str) else json.dumps(marker))


# ----------------------------------------------------------------- forged or malformed markers
@pytest.mark.parametrize("marker, reason", [
    ({"tool": "causal_hcc"}, "unknown marker format"),
    ({"tool": "causal_hcc", "files": "all"}, "unknown marker format"),
    ({"tool": "causal_hcc", "marker_format": 2}, "no list of the files written"),
    ({"tool": "causal_hcc", "marker_format": 2, "files": "all"}, "no list of the files written"),
    ({"tool": "causal_hcc", "marker_format": 2, "files": ["thesis.docx"]}, "a file entry is not {path, size, sha256}"),
    ({"tool": "causal_hcc", "marker_format": 2, "files": [{"path": "../x", "size": 1, "sha256": "0" * 64}]},
     "a file entry has an invalid path '../x'"),
    ({"tool": "causal_hcc", "marker_format": 2, "files": [{"path": "thesis.docx", "size": "13", "sha256": "0" * 64}]},
     "the size of 'thesis.docx' is not a byte count"),
    ({"tool": "causal_hcc", "marker_format": 2, "files": [{"path": "thesis.docx", "size": 13, "sha256": "all"}]},
     "the hash of 'thesis.docx' is not a SHA-256"),
    ({"tool": "causal_hcc", "files": ["thesis.docx", "results.json"]},
     "written by an earlier causal-hcc version, without file hashes"),
])
def test_force_refuses_a_forged_or_malformed_marker(case, marker, reason):
    _user_folder(case, marker)
    before = case.snapshot()
    case.refused(cli("run", case.spec, "--output", case.out, "--force", "-q"),
                 f"error: output folder '{case.out}': its {MARKER} marker cannot be trusted ({reason}); --force "
                 "replaces only a folder whose marker lists every file with its hash: remove it yourself or choose "
                 "another --output", before=before)


@pytest.mark.parametrize("marker", ["not json", "[1, 2]", '{"tool": "other"}', "{" * 100_000])
def test_force_refuses_a_marker_that_is_not_ours(case, marker):
    _user_folder(case, marker)
    before = case.snapshot()
    case.refused(cli("run", case.spec, "--output", case.out, "--force", "-q"),
                 startswith=f"error: output folder '{case.out}' was not written by causal-hcc (no {MARKER} marker)",
                 before=before)


def test_force_refuses_a_marker_whose_hashes_do_not_match(case):
    """A well-formed marker listing the user's files with made-up hashes: 'changed', nothing removed."""
    _user_folder(case, {"tool": "causal_hcc", "marker_format": 2, "files": [
        {"path": "thesis.docx", "size": 13, "sha256": "0" * 64}, {"path": "results.json", "size": 2, "sha256": "1" * 64}]})
    before = case.snapshot()
    case.refused(cli("run", case.spec, "--output", case.out, "--force", "-q"),
                 f"error: output folder '{case.out}': 'results.json' was changed after causal-hcc wrote it; --force "
                 "never replaces an edited file: move it first or choose another --output", before=before)


def test_force_refuses_an_edited_report(case):
    """Decision: listed files are hashed; an edited report.md is never replaced (README, docs/disclosure.md)."""
    assert cli("run", case.spec, "--output", case.out, "-q").exit_code == 0
    (case.out / "report.md").write_text((case.out / "report.md").read_text() + "\nmy corrections\n")
    before = case.snapshot()
    case.refused(cli("run", case.spec, "--output", case.out, "--force", "-q"),
                 f"error: output folder '{case.out}': 'report.md' was changed after causal-hcc wrote it; --force "
                 "never replaces an edited file: move it first or choose another --output", before=before)


def test_force_refuses_a_listed_file_replaced_by_a_symlink(case, tmp_path):
    assert cli("run", case.spec, "--output", case.out, "-q").exit_code == 0
    elsewhere = case.root / "keep.md"
    elsewhere.write_text("mine")
    (case.out / "report.md").unlink()
    (case.out / "report.md").symlink_to(elsewhere)
    before = case.snapshot()
    case.refused(cli("run", case.spec, "--output", case.out, "--force", "-q"),
                 startswith=f"error: output folder '{case.out}': 'report.md' was changed after", before=before)
    assert elsewhere.read_text() == "mine"


def test_force_refuses_a_user_file_in_a_subfolder(case):
    assert cli("run", case.spec, "--output", case.out, "-q").exit_code == 0
    (case.out / "figures" / "my_figure.png").write_bytes(b"\x89PNG mine")
    before = case.snapshot()
    case.refused(cli("run", case.spec, "--output", case.out, "--force", "-q"),
                 f"error: output folder '{case.out}' holds 'figures/my_figure.png' that causal-hcc did not write; "
                 "--force replaces only an unchanged causal-hcc output folder: move it first", before=before)


def test_force_tolerates_a_deleted_file_of_ours(case):
    assert cli("run", case.spec, "--output", case.out, "-q").exit_code == 0
    (case.out / "report.md").unlink()
    r = cli("run", case.spec, "--output", case.out, "--force", "-q")
    assert r.exit_code == 0, r.stderr
    assert (case.out / "report.md").exists()
    assert sorted(os.listdir(case.root)) == ["cohort.csv", "out", "spec.yaml"]


def test_remove_ours_keeps_what_appeared_meanwhile(tmp_path):
    """After the swap the old folder loses only its listed, unchanged files (a file that appeared in a
    race, or was edited, stays)."""
    d = tmp_path / "old"
    (d / "figures").mkdir(parents=True)
    (d / "a.csv").write_text("ours")
    (d / "figures" / "f.png").write_text("ours too")
    files = {f["path"]: (f["size"], f["sha256"]) for f in _atomic._inventory(str(d))}
    (d / MARKER).write_text("{}")
    (d / "figures" / "user.png").write_text("theirs")
    (d / "a.csv").write_text("edited")
    left = _atomic._remove_ours(str(d), files)
    assert sorted(left) == ["a.csv", os.path.join("figures", "user.png")]
    assert (d / "a.csv").read_text() == "edited" and not (d / "figures" / "f.png").exists()
    assert not (d / MARKER).exists()
    (d / "a.csv").unlink()
    (d / "figures" / "user.png").unlink()
    assert _atomic._remove_ours(str(d), files) == [] and not d.exists()


# ----------------------------------------------------------------- report DIR
def test_report_refuses_an_unmarked_user_folder(case):
    """An unmarked folder holding a results.json (a copy) and the user's own report and figure."""
    assert cli("run", case.spec, "--output", case.out, "-q").exit_code == 0
    mine = case.root / "mine"
    (mine / "figures").mkdir(parents=True)
    for f in ("results.json", "curves.parquet"):
        (mine / f).write_bytes((case.out / f).read_bytes())
    (mine / "report.md").write_text("my own report")
    (mine / "figures" / "my_figure.png").write_bytes(b"my figure")
    before = case.snapshot()
    case.refused(cli("report", mine),
                 f"error: report folder '{mine}': it has no causal-hcc marker; 'causal-hcc report' writes only into "
                 "a folder that causal-hcc wrote: give --output NEW to write the report into a new folder",
                 before=before)
    # a forged marker does not help either
    (mine / MARKER).write_text(json.dumps({"tool": "causal_hcc", "files": "all"}))
    before = case.snapshot()
    case.refused(cli("report", mine), startswith=f"error: report folder '{mine}': its {MARKER} marker cannot be trusted",
                 before=before)
    # --output NEW: the report goes into a new folder; the user's folder is untouched
    r = cli("report", mine, "--output", case.root / "rebuilt")
    assert r.exit_code == 0, r.stderr
    assert (mine / "report.md").read_text() == "my own report"
    assert (mine / "figures" / "my_figure.png").read_bytes() == b"my figure"
    assert (case.root / "rebuilt" / "report.html").exists() and (case.root / "rebuilt" / MARKER).exists()
    assert not [n for n in os.listdir(case.root) if "causal_hcc" in n]


def test_report_keeps_a_user_figure_and_lists_only_ours(case):
    assert cli("run", case.spec, "--output", case.out, "-q").exit_code == 0
    (case.out / "figures" / "my_figure.png").write_bytes(b"my figure")
    (case.out / "notes.txt").write_text("my notes")
    r = cli("report", case.out)
    assert r.exit_code == 0, r.stderr
    assert (case.out / "figures" / "my_figure.png").read_bytes() == b"my figure"
    assert (case.out / "notes.txt").read_text() == "my notes"
    stamp = json.loads((case.out / MARKER).read_text())
    listed = {f["path"] for f in stamp["files"]}
    assert "figures/my_figure.png" not in listed and "notes.txt" not in listed and "report.html" in listed
    for f in stamp["files"]:
        assert _atomic.file_sha256(str(case.out / f["path"])) == f["sha256"]
    assert not [n for n in os.listdir(case.out) if "causal_hcc-" in n and n != MARKER]
    assert not [n for n in os.listdir(case.root) if "causal_hcc" in n]  # no lock left
    # and --force still refuses the folder while the user's files are there
    before = case.snapshot()
    case.refused(cli("run", case.spec, "--output", case.out, "--force", "-q"),
                 startswith=f"error: output folder '{case.out}' holds ", before=before)


def test_report_refuses_to_replace_an_edited_report(case):
    assert cli("run", case.spec, "--output", case.out, "-q").exit_code == 0
    (case.out / "report.md").write_text("edited by hand")
    before = case.snapshot()
    case.refused(cli("report", case.out),
                 f"error: report folder '{case.out}': 'report.md' was changed after causal-hcc wrote it; 'report' "
                 "never replaces an edited file: move it first", before=before)


def test_report_refuses_to_replace_an_unlisted_file_of_the_same_name(case):
    assert cli("run", case.spec, "--output", case.out, "-q").exit_code == 0
    stamp = json.loads((case.out / MARKER).read_text())
    stamp["files"] = [f for f in stamp["files"] if f["path"] != "report.md"]  # the user's report.md, say
    (case.out / MARKER).write_text(json.dumps(stamp))
    before = case.snapshot()
    case.refused(cli("report", case.out),
                 f"error: report folder '{case.out}': 'report.md' was not written by causal-hcc; 'report' never "
                 "replaces a file it did not write: move it first", before=before)


def test_report_removes_only_its_own_stale_figures(case):
    assert cli("run", case.spec, "--output", case.out, "-q").exit_code == 0
    # a figure of ours that this report no longer draws (listed, unchanged): removed
    stale = case.out / "figures" / "old_ours.png"
    stale.write_bytes(b"old")
    stamp = json.loads((case.out / MARKER).read_text())
    stamp["files"].append({"path": "figures/old_ours.png", "size": 3, "sha256": _atomic.file_sha256(str(stale))})
    (case.out / MARKER).write_text(json.dumps(stamp))
    assert cli("report", case.out).exit_code == 0
    assert not stale.exists()


# ----------------------------------------------------------------- lock file and temporaries
def test_a_user_file_named_like_the_lock_is_never_truncated(case):
    lock = case.root / ".out.causal_hcc-lock"
    lock.write_text("my shopping list\n")
    before = case.snapshot()
    case.refused(cli("run", case.spec, "--output", case.out, "-q"),
                 f"error: output folder '{case.out}': '{lock}' is in the way: causal-hcc uses that name for its lock "
                 "file, and this one is not a causal-hcc lock; move it or choose another --output", before=before)


def test_a_symlink_named_like_the_lock_is_refused(case):
    target = case.root / "precious.txt"
    target.write_text("precious")
    (case.root / ".out.causal_hcc-lock").symlink_to(target)
    before = case.snapshot()
    case.refused(cli("run", case.spec, "--output", case.out, "-q"),
                 startswith=f"error: output folder '{case.out}': '{case.root / '.out.causal_hcc-lock'}' is in the way",
                 before=before)


@pytest.mark.parametrize("content", [b"causal_hcc-lock 999999 somehost\n", b"4242"])
def test_a_stale_lock_of_ours_is_reused_and_removed(case, content):
    (case.root / ".out.causal_hcc-lock").write_bytes(content)
    r = cli("run", case.spec, "--output", case.out, "-q")
    assert r.exit_code == 0, r.stderr
    assert sorted(os.listdir(case.root)) == ["cohort.csv", "out", "spec.yaml"]


def test_stale_lock_cleanup_leaves_lookalikes(tmp_path):
    mine = tmp_path / ".x.causal_hcc-lock"
    mine.write_text("not a lock")
    ours = tmp_path / ".y.causal_hcc-lock"
    ours.write_text(f"causal_hcc-lock 1 {os.uname().nodename}\n")
    _atomic.clean_stale(str(tmp_path))
    assert mine.read_text() == "not a lock" and not ours.exists()


def test_twin_output_goes_through_a_marked_temporary_folder(case, monkeypatch):
    seen = {}
    real = _atomic._move_noreplace

    def spy(src, dst):
        seen.setdefault("src", src)      # the cohort (the visits table follows, the same way)
        seen.setdefault("marker", json.loads(open(os.path.join(os.path.dirname(src), MARKER)).read()))
        return real(src, dst)

    monkeypatch.setattr(_atomic, "_move_noreplace", spy)
    target = case.root / "twin.csv"
    assert cli("twin", "--output", target).exit_code == 0
    tdir = os.path.basename(os.path.dirname(seen["src"]))
    assert tdir.startswith(".twin.csv.causal_hcc-tmp-") and seen["marker"]["temporary"] == tdir.rsplit("-", 1)[1]
    assert sorted(os.listdir(case.root)) == ["cohort.csv", "spec.yaml", "twin.csv", "twin_visits.csv"]


# ----------------------------------------------------------------- messages (item 6)
@pytest.mark.parametrize("argv", [["run", "{spec}", "--output", ""], ["run", "{spec}", "--output", "  "],
                                  ["simulate", "{spec}", "-r", "2", "--output", ""], ["twin", "--output", ""],
                                  ["report", "{root}", "--output", ""]])
def test_empty_output_is_refused(case, argv):
    args = [a.format(spec=case.spec, root=case.root) for a in argv]
    before = case.snapshot()
    case.refused(cli(*args), "error: --output: empty path; give a folder name, or leave --output out for the default",
                 before=before)


def test_read_only_file_system_is_named(case, monkeypatch):
    monkeypatch.setattr(_atomic, "_read_only_fs", lambda p: True)
    before = case.snapshot()
    case.refused(cli("run", case.spec, "--output", case.out, "-q"),
                 f"error: output folder '{case.out}': cannot write in '{case.root}': the file system is read-only; "
                 "choose another --output", before=before)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_read_only_folder_is_named(case):
    ro = case.root / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        before = case.snapshot()
        case.refused(cli("run", case.spec, "--output", ro / "out", "-q"),
                     f"error: output folder '{ro / 'out'}': cannot write in '{ro}' (the folder is read-only for you: "
                     "permission denied); choose a folder you can write to", before=before)
    finally:
        ro.chmod(0o755)
