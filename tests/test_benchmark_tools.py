"""The shared timing loops and the side-by-side benchmark's round-by-round ratios (benchmarks/)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import FIXTURE_IMAGES
from conftest import load_benchmark as load


def test_time_rounds_keeps_every_round() -> None:
    """One median per round for each function, in alternation; the slow one reads slower in every round."""
    timing = load("timing")
    calls: list[str] = []
    fns = {"fast": lambda: calls.append("fast"), "slow": lambda: (calls.append("slow"), time.sleep(0.002))}
    r = timing.time_rounds(fns, rounds=4, seconds_per_round=0.01)
    assert set(r) == {"fast", "slow"} and all(len(v) == 4 for v in r.values())
    assert all(s > f for f, s in zip(r["fast"], r["slow"]))
    assert r["slow"][0] > 0.0015
    # Alternation: after the warm-up, the calls switch function at least once per round.
    switches = sum(a != b for a, b in zip(calls[6:], calls[7:]))
    assert switches >= 2 * 4 - 1


def test_round_ratios_pair_the_rounds() -> None:
    """Round i's ratio is the replica's round-i time over the mean of wbcnet's round-i times."""
    run = load("run")  # it puts benchmarks/ on sys.path for its `timing` import
    seed = {"k_rounds": [2.0, 4.0, 3.0]}
    ours = [{"k_rounds": [1.0, 1.0, 2.0]}, {"k_rounds": [1.0, 3.0, 1.0]}]
    assert run.round_ratios(seed, ours, "k") == pytest.approx([2.0, 2.0, 2.0])
    ours[0]["k_rounds"][2] = 5.0
    assert run.round_ratios(seed, ours, "k") == pytest.approx([2.0, 2.0, 1.0])
    assert run.ratio_spread(seed, ours, "k") == "1.0-2.0x (median 2.0x) over 3 rounds"


def test_ensemble_oof_refuses_a_folder_named_twice(tmp_path, monkeypatch, capsys) -> None:
    """The same cross-validation folder twice is refused in one line, before any fold is read
    (it used to pool its views twice and fail with a traceback)."""
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    oof = load("ensemble_oof")
    monkeypatch.setattr("sys.argv", ["ensemble_oof.py", str(tmp_path / "e21"), str(tmp_path / "e21")])
    with pytest.raises(SystemExit) as e:
        oof.main()
    assert e.value.code == 2
    assert "name each cross-validation folder once" in capsys.readouterr().err
    # Folders with no finished fold run (a clone has no runs/) are named, with how runs/ is made.
    monkeypatch.setattr("sys.argv", ["ensemble_oof.py", str(tmp_path / "e21"), str(tmp_path / "e36")])
    assert oof.main() == 2
    err = capsys.readouterr().err
    assert f"no finished fold run (foldK/last.pt) in {tmp_path / 'e21'}, {tmp_path / 'e36'}" in err
    assert "runs/ is not in the repository" in err


def test_ensemble_oof_reads_scale_cv_results(tmp_path, monkeypatch, capsys) -> None:
    """`DIR:RECIPE` reads a recipe's fold logits from scale_cv.py's scale.npz: each recipe's row, their
    mean's, and how many cells at least one gets right, computed from the logits given."""
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    oof = load("ensemble_oof")
    y = np.array([0, 0, 1, 2, 3, 3])
    cells = np.array(["a", "a", "b", "c", "d", "e"])
    right = np.eye(4)[y] * 5.0  # (N, 4) logits that decide every file right
    wrong_d = right.copy()
    wrong_d[4] = np.eye(4)[0] * 5.0  # cell d read as an eosinophil
    arrays = {}
    for name, lg in (("good", right), ("bad", wrong_d)):
        arrays.update({f"{name}_fold0_logits": np.stack([lg] * 8), f"{name}_fold0_y": y, f"{name}_fold0_cells": cells})
    np.savez(tmp_path / "scale.npz", **arrays)
    monkeypatch.setattr("sys.argv", ["ensemble_oof.py", f"{tmp_path}:good", f"{tmp_path}:bad"])
    assert oof.main() == 0
    out = capsys.readouterr().out
    assert out.startswith("6 out-of-fold files of 5 cells, folds 0")
    assert f"| {tmp_path.name}:good | 100.00% | 5 / 5 |" in out
    assert f"| {tmp_path.name}:bad | 83.33% | 4 / 5 |" in out
    assert "| 0 / 1 |" in out  # the bad recipe's neutrophil read as an eosinophil
    assert "at least one is right on 100.00% of files and 5 cells" in out.lower()
    monkeypatch.setattr("sys.argv", ["ensemble_oof.py", f"{tmp_path}:good", f"{tmp_path}:none"])
    assert oof.main() == 2
    assert f"{tmp_path}:none: no fold of recipe none in {tmp_path}/scale.npz" in capsys.readouterr().err
    # A quick check's runs are said to be such beside their rows (scale_cv.py's options).
    (tmp_path / "scale.json").write_text('{"options": {"epochs": 2, "limit_cells": null}}')
    monkeypatch.setattr("sys.argv", ["ensemble_oof.py", f"{tmp_path}:good", f"{tmp_path}:bad"])
    assert oof.main() == 0
    assert f"| {tmp_path.name}:good (--epochs 2) | 100.00% |" in capsys.readouterr().out
    # A fold the scale.npz lacks is named as its fold, with the script that adds it.
    monkeypatch.setattr("sys.argv", ["ensemble_oof.py", f"{tmp_path}:good", f"{tmp_path}:bad", "--folds", "0", "1"])
    assert oof.main() == 2
    err = capsys.readouterr().err
    assert f"no finished fold run at fold 1 of {tmp_path}:good, fold 1 of {tmp_path}:bad" in err
    assert "scale_cv.py run` adds a recipe's folds" in err
    # A damaged file (cut short) is named as such, not a traceback.
    damaged = tmp_path / "cut"
    damaged.mkdir()
    (damaged / "scale.npz").write_bytes((tmp_path / "scale.npz").read_bytes()[:300])
    monkeypatch.setattr("sys.argv", ["ensemble_oof.py", f"{damaged}:good", f"{tmp_path}:good"])
    assert oof.main() == 2
    assert f"{damaged}:good: {damaged}/scale.npz is damaged (" in capsys.readouterr().err


def test_cv_render_names_what_it_cannot_read(tmp_path: Path) -> None:
    """`cv.py --render` of something that is not a cv.py result says so in one line naming it, with exit
    status 2 (it raised a traceback): a missing file (and that runs/ is made by cv.py), a folder, not
    JSON, JSON of another kind, and a result short of a figure."""
    import subprocess
    import sys

    from conftest import BENCHMARKS

    cases = {"gone.json": None, "adir": "dir", "text.json": "not json", "list.json": "[1, 2]",
             "part.json": '{"calibrated": {}, "raw": {}, "folds": {}, "temperature": 1}'}
    says = {"gone.json": "cannot be read (No such file or directory); cv.py writes WORK/NAME/cv.json",
            "adir": "a folder; name its cv.json", "text.json": "not JSON", "list.json": "not a cv.py result",
            "part.json": "lacks a figure the table needs (KeyError: 'per_class')"}
    for name, content in cases.items():
        p = tmp_path / name
        if content == "dir":
            p.mkdir()
        elif content is not None:
            p.write_text(content)
        r = subprocess.run([sys.executable, str(BENCHMARKS / "cv.py"), "--render", str(p)],
                           capture_output=True, text=True)
        assert r.returncode == 2 and r.stderr.startswith(f"cv.py: error: {p}: {says[name]}"), (name, r.stderr)
        assert "Traceback" not in r.stderr


def test_cv_use_of_a_run_that_is_not_there_is_refused(tmp_path: Path) -> None:
    """`--use K=RUN` takes an existing run: a mistyped path trained a new fold there (15 minutes, outside --work)."""
    import subprocess
    import sys

    from conftest import BENCHMARKS

    r = subprocess.run([sys.executable, str(BENCHMARKS / "cv.py"), "--name", "x", "--work", str(tmp_path / "cv"),
                        "--use", f"0={tmp_path / 'nope'}", "--folds", "0"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.startswith(f"cv: --use 0={tmp_path / 'nope'}: no run there"), r.stderr
    assert not (tmp_path / "nope").exists() and not (tmp_path / "cv").exists()


def test_train_step_runs_on_an_earlier_commits_src(monkeypatch: pytest.MonkeyPatch) -> None:
    """benchmarks/train_step.py runs with an earlier commit's src (the old side of a comparison, as its recipe's
    import allows): there the optimizer was wbc.train._make_optimizer, and `make_optimizer` an ImportError."""
    pytest.importorskip("torch")
    import wbc.train

    monkeypatch.setattr(wbc.train, "_make_optimizer", wbc.train.make_optimizer, raising=False)
    monkeypatch.delattr(wbc.train, "make_optimizer")
    with pytest.raises(SystemExit) as e:
        load("train_step").main(["--help"])
    assert e.value.code == 0


def test_train_step_prints_each_timing_and_the_layout_ratio(capsys) -> None:
    """benchmarks/train_step.py times augmentation and both layouts of a step and prints the ratio
    of the two layouts and augmentation's share, from its own timings."""
    pytest.importorskip("torch")
    train_step = load("train_step")
    train_step.main(["--batch-size", "4", "--rounds", "1", "--threads", "1"])
    out = capsys.readouterr().out
    assert out.startswith("wbcnet: batch 4 x 3 x 96 x 96")
    ms = {name: float(out.split(name)[1].split()[0]) for name in
          ("augment (robust-erase)", "network step, NCHW", "network step, channels-last")}
    assert all(v > 0 for v in ms.values())
    ratio = ms["network step, NCHW"] / ms["network step, channels-last"]
    # The printed figures are rounded to 0.1 ms, the ratio from the unrounded times.
    assert float(out.split("channels-last step: ")[1].split("x")[0]) == pytest.approx(ratio, rel=0.1, abs=0.02)
    assert "augment share" in out


def test_magnification_compares_both_ways_on_a_tiny_data_set(tmp_path, capsys) -> None:
    """Two TEST fields whose 'originals' are fixture files at 2x: the table has a row per scale with
    both counts, the 4x row shows the fields shrunk, and --check-data finds no data set file shrunk."""
    import shutil

    from PIL import Image

    from wbc.sources import Match, write_table

    from conftest import FIXTURE_IMAGES

    mag = load("magnification")
    picks = [("EOSINOPHIL", next((FIXTURE_IMAGES / "TRAIN" / "EOSINOPHIL").iterdir())),
             ("MONOCYTE", next((FIXTURE_IMAGES / "TRAIN" / "MONOCYTE").iterdir()))]
    images = tmp_path / "dataset2-master" / "images"
    jpegs = tmp_path / "dataset-master" / "JPEGImages"
    jpegs.mkdir(parents=True)
    (tmp_path / "dataset-master" / "labels.csv").write_text(",Image,Category\n")
    for cls in ("EOSINOPHIL", "LYMPHOCYTE", "MONOCYTE", "NEUTROPHIL"):
        (images / "TEST" / cls).mkdir(parents=True)
    matches = []
    for i, (cls, f) in enumerate(picks, start=1):
        shutil.copy(f, images / "TEST" / cls / f.name)
        img = Image.open(f)
        img.resize((img.width * 2, img.height * 2), Image.BILINEAR).save(jpegs / f"BloodImage_{i:05d}.jpg", quality=95)
        matches.append(Match("TEST", cls, f.name, i, 100, 0))
    write_table(matches, tmp_path / "table.csv.gz")
    assert mag.main(["--data", str(tmp_path), "--table", str(tmp_path / "table.csv.gz"), "--scales", "1", "4",
                     "--check-data"]) == 0
    out = capsys.readouterr().out
    rows = {r.split("|")[1].strip(): [c.strip() for c in r.split("|")[2:-1]] for r in out.splitlines() if r.startswith("| 1x") or r.startswith("| 4x")}
    assert set(rows) == {"1x", "4x"}
    assert rows["1x"][4] == "1x: 2"
    assert "1x: 2" not in rows["4x"][4] and all(c.endswith("/ 2") for c in (rows["4x"][0], rows["4x"][2]))
    assert "The data set's own files (TRAIN and TEST): 2;" in out and "0 would be shrunk" in out


def two_file_data_set(root) -> None:  # noqa: ANN001
    """A data set under `root` with one fixture cell in TRAIN (an eosinophil) and one in TEST (a neutrophil)."""
    import shutil

    from conftest import FIXTURE_IMAGES

    images = root / "dataset2-master" / "images"
    for split in ("TRAIN", "TEST"):
        for cls in ("EOSINOPHIL", "LYMPHOCYTE", "MONOCYTE", "NEUTROPHIL"):
            (images / split / cls).mkdir(parents=True)
    for split, cls in [("TRAIN", "EOSINOPHIL"), ("TEST", "NEUTROPHIL")]:
        f = next((FIXTURE_IMAGES / "TRAIN" / cls).iterdir())
        shutil.copy(f, images / split / cls / f.name)


def fake_original(root, img, field: int, boxes: list[tuple[int, int, int, int]]) -> None:  # noqa: ANN001
    """A dataset-master under `root` holding `img` (PIL) as original `field` at 640 x 480, with BCCD white-cell
    boxes (x0, y0, x1, y1) in its px."""
    originals = root / "dataset-master"
    (originals / "JPEGImages").mkdir(parents=True, exist_ok=True)
    (originals / "Annotations").mkdir(exist_ok=True)
    (originals / "labels.csv").write_text(",Image,Category\n")
    name = f"BloodImage_{field:05d}"
    img.resize((640, 480)).save(originals / "JPEGImages" / f"{name}.jpg")
    objects = "".join(f"<object><name>WBC</name><bndbox><xmin>{a}</xmin><ymin>{b}</ymin><xmax>{c}</xmax><ymax>{d}</ymax>"
                      "</bndbox></object>" for a, b, c, d in boxes)
    (originals / "Annotations" / f"{name}.xml").write_text(f"<annotation><filename>{name}.jpg</filename>{objects}</annotation>")


def test_stain_peak_checks_and_times_both_ways(tmp_path, capsys) -> None:
    """On two data-set files, as they are and enlarged 2x: stain_peak equals the whole blur's peak on
    both, and each scale gets its timing line with the ratio."""
    sp = load("stain_peak")
    two_file_data_set(tmp_path)
    sp.main(["--data", str(tmp_path), "--magnified", "2", "--timed", "2"])
    out = capsys.readouterr().out
    for scale in ("x1", "x2"):
        assert f"{scale}: 2 files of TRAIN + TEST (every 1): stain_peak equals the whole field's peak on 2 (100.00%)" in out
        line = next(x for x in out.splitlines() if x.startswith(f"{scale}: over 2 fields, median of 5 rounds"))
        assert line.endswith("x)") and "stain_peak" in line


def test_screening_lists_the_patches_that_pass(tmp_path, capsys) -> None:
    """--list-passing's listing: of a blank patch, a red-cell patch and a real cell's middle, only the
    cell passes, listed by its place with its stain figures and saved in the sheet."""
    from PIL import Image

    from conftest import FIXTURE_IMAGES, FIXTURES
    from wbc.decode import load_image

    scr = load("screening")
    cell = load_image(sorted((FIXTURE_IMAGES / "TEST_SIMPLE" / "EOSINOPHIL").glob("*.jpeg"))[0])
    red = np.asarray(Image.open(FIXTURES / "no-white-cell.jpeg").convert("RGB"))
    patches = [np.full((128, 128, 3), 228, np.uint8), red[:128, :128], cell[56:184, 96:224]]
    assert scr.list_passing(patches, tmp_path / "sheet.png") == 0
    out = capsys.readouterr().out
    assert out.startswith("1 of 3 patches pass") and "\n| 2 | " in out and "\n| 0 | " not in out and "\n| 1 | " not in out
    assert Image.open(tmp_path / "sheet.png").size == (128 * 6, 128)


def test_screening_counts_both_ways_on_a_tiny_data_set(tmp_path, capsys, monkeypatch) -> None:
    """Two real cells pass clean and under other cameras' colours (the dim ones only on the second look; the
    overexposed ones marked so, and only those); an annotated
    field of red cells gives the three corners clear of its white-cell box, all flagged."""
    import json

    from PIL import Image

    from conftest import FIXTURES

    scr = load("screening")
    two_file_data_set(tmp_path)
    fake_original(tmp_path, Image.open(FIXTURES / "no-white-cell.jpeg").convert("RGB"), 1, [(20, 20, 120, 120)])
    assert scr.main(["--data", str(tmp_path), "--json", str(tmp_path / "s.json")]) == 0
    res = json.loads((tmp_path / "s.json").read_text())
    real, red = res["real cells (TRAIN + TEST files)"], res["red cells only (original fields' corners)"]
    from wbc.robustness import COLOUR_SHIFTS

    assert set(real) == set(red) == {"clean", *COLOUR_SHIFTS, "brightness x1.2", "brightness x1.3"}
    assert all(r["n"] == 2 for r in real.values())
    assert all(r["flagged"] == 0 for name, r in real.items()
               if name.startswith(("clean", "white balance", "brightness x0.6")) and "halogen" not in name)
    # Halogen light: past the spread other casts keep, so both refused on the first look; the second, with the
    # warm cast's wider bound, passes one of the two (6% of TEST's files stay refused, told of the cast).
    halogen = real["white balance: halogen (R x1.25, B x0.65)"]
    assert halogen["flagged_first_look"] == 2 and halogen["flagged"] == 1, halogen
    assert real["brightness x0.6"]["flagged_first_look"] == 2
    assert {name for name, r in real.items() if r["overexposed"]} <= {"brightness x1.2", "brightness x1.3",
                                                                      "brightness x1.4 (overexposed)"}
    assert real["brightness x1.4 (overexposed)"]["overexposed"] == 2
    assert real["clean"]["most_clipped"] < 0.001 < real["brightness x1.2"]["most_clipped"]
    assert all(r["n"] == 3 and r["flagged"] == 3 for r in red.values())
    assert "| red cells only (original fields' corners) | clean | 3 | 3 (100.0%) |" in capsys.readouterr().out
    # The middles of the sides: the white cell's box (top left, 10-60 px at the data set's scale) rules
    # out the left one only; every 2nd file from the second is the TEST one alone.
    assert scr.main(["--data", str(tmp_path), "--every", "2", "--offset", "1", "--patches", "sides",
                     "--json", str(tmp_path / "s2.json")]) == 0
    res = json.loads((tmp_path / "s2.json").read_text())
    assert res["real cells (TRAIN + TEST files)"]["clean"]["n"] == 1
    assert all(r["n"] == 3 and r["flagged"] == 3 for r in res["red cells only (original fields' sides)"].values())
    # Half the light needs a gain above 2, the shipped ceiling; with --gain-ceiling 3 both cells pass.
    assert real["brightness x0.5"]["flagged"] == 2
    import wbc.white_balance

    # restored after: the option sets it
    monkeypatch.setattr(wbc.white_balance, "GAIN_RANGE", wbc.white_balance.GAIN_RANGE)
    assert scr.main(["--data", str(tmp_path), "--gain-ceiling", "3", "--json", str(tmp_path / "s3.json")]) == 0
    res = json.loads((tmp_path / "s3.json").read_text())
    assert res["real cells (TRAIN + TEST files)"]["brightness x0.5"]["flagged"] == 0
    assert all(r["flagged"] == 3 for r in res["red cells only (original fields' corners)"].values())


def test_robustness_cv_pools_fold_models_on_their_held_out_files(tiny_run, tmp_path, capsys) -> None:
    """--cv: each fold model predicts the TRAIN files of its held-out cells; two folds pool to the
    file-weighted accuracy and the summed confusion of each alone, and the JSON is strict."""
    import json
    import shutil

    from conftest import FIXTURE_IMAGES

    rob = load("robustness")
    split = json.loads((tiny_run / "split.json").read_text())
    other = tmp_path / "other"
    shutil.copytree(tiny_run, other)  # the same network, held out from (scored on) the other cells
    (other / "split.json").write_text(json.dumps({"train_cells": split["val_cells"], "val_cells": split["train_cells"]}))

    def run(name: str, folds: dict[str, object]) -> dict:
        cv = tmp_path / name
        cv.mkdir()
        for fold, target in folds.items():
            (cv / fold).symlink_to(target)
        out = tmp_path / f"{name}.json"
        assert rob.main(["--cv", str(cv), "--data", str(FIXTURE_IMAGES.parent), "--shifts", "brightness x0.6",
                         "--json", str(out)]) == 0
        return json.loads(out.read_text(), parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))

    a, b, both = run("a", {"fold0": tiny_run}), run("b", {"fold1": other}), run("ab", {"fold0": tiny_run, "fold1": other})
    assert list(both) == ["clean", "brightness x0.6"]
    for shift in both:
        na, nb = (sum(map(sum, r[shift]["confusion"])) for r in (a, b))
        assert both[shift]["accuracy"] == pytest.approx((na * a[shift]["accuracy"] + nb * b[shift]["accuracy"]) / (na + nb))
        assert both[shift]["confusion"] == [[x + y for x, y in zip(ra, rb)] for ra, rb in zip(a[shift]["confusion"], b[shift]["confusion"])]
        assert 0 <= both[shift]["macro_f1"] <= 1 and both[shift]["flagged"] == a[shift]["flagged"] + b[shift]["flagged"]
    out = capsys.readouterr().out
    n_cells = len(split["val_cells"]) + len(split["train_cells"])
    assert f"2 fold models, each on the TRAIN files of the cells it was held out from ({na + nb} files, {n_cells} cells)" in out


def test_same_outputs_finds_a_changed_analysis(tmp_path, capsys) -> None:
    """benchmarks/same_outputs.py: two dumps of the same code compare equal (exit 0); a crop, a
    probability or a screening field changed in one analysis is counted and fails the comparison."""
    import numpy as np

    from conftest import FIXTURE_IMAGES

    same = load("same_outputs")
    a = tmp_path / "a.npz"
    same.main(["dump", str(a), "--every", "5", "--data", str(FIXTURE_IMAGES.parent), "--splits", "TRAIN"])
    assert same.main(["compare", str(a), str(a)]) == 0
    assert "crops differ in 0, probabilities in 0" in capsys.readouterr().out
    with np.load(a) as z:
        parts = {k: z[k].copy() for k in z.files}
    n = len(parts["keys"])
    from wbc.robustness import EXTRA_SHIFTS, SHIFTS

    ways = len(SHIFTS) + len(EXTRA_SHIFTS)  # as photographed ("clean") and every shift
    assert n == len(parts["crops"]) == len(parts["probs"]) and n % ways == 0 and n >= 2 * ways
    for key, change in (("crops", lambda v: v.__setitem__((1, 0, 0, 0), v[1, 0, 0, 0] ^ 1)),
                        ("probs", lambda v: v.__setitem__((2, 0), v[2, 0] + 1e-7)),
                        ("screens", lambda v: v.__setitem__((3, 2), "0.5"))):
        changed = {k: v.copy() for k, v in parts.items()}
        change(changed[key])
        b = tmp_path / f"{key}.npz"
        np.savez_compressed(b, **changed)
        assert same.main(["compare", str(a), str(b)]) == 1, key
        out = capsys.readouterr().out
        assert "e.g. " + str(parts["keys"][{"crops": 1, "probs": 2, "screens": 3}[key]]) in out
    assert "screening peak: differs in 1" in out
    nan = {k: v.copy() for k, v in parts.items()}
    nan["probs"][0, 0] = np.nan  # a NaN on one side only differs; on both, it is the same
    np.savez_compressed(tmp_path / "nan.npz", **nan)
    assert same.main(["compare", str(a), str(tmp_path / "nan.npz")]) == 1
    assert same.main(["compare", str(tmp_path / "nan.npz"), str(tmp_path / "nan.npz")]) == 0


def test_predict_ab_times_both_sides() -> None:
    """benchmarks/predict_ab.sh against this very commit: each round times both sides, the card's path
    and one view are read off predict_latency.py's output, and the medians and their ratio printed."""
    import os
    import re
    import shutil
    import subprocess
    import sys

    from conftest import BENCHMARKS

    root = BENCHMARKS.parent
    if shutil.which("git") is None or subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"],
                                                     capture_output=True).returncode != 0:
        pytest.skip("not a git checkout")

    def worktrees() -> list[str]:
        return subprocess.run(["git", "-C", str(root), "worktree", "list"], capture_output=True, text=True).stdout.splitlines()

    before = worktrees()
    r = subprocess.run(["bash", str(BENCHMARKS / "predict_ab.sh"), "HEAD", "1", "3"], capture_output=True, text=True,
                       timeout=300, env={**os.environ, "PYTHON": sys.executable})
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert re.fullmatch(r"round 1  old \(HEAD\): card's path [\d.]+ ms, one view [\d.]+ ms", lines[0]), lines
    assert re.fullmatch(r"round 1  new \(working tree\): card's path [\d.]+ ms, one view [\d.]+ ms", lines[1]), lines
    assert re.fullmatch(r"card's path: median [\d.]+ ms before, [\d.]+ ms now \([\d.]+x\)", lines[2]), lines
    assert worktrees() == before  # its worktree of REV is removed again


def test_cell_errors_reads_true_classes_in_any_case(tmp_path, monkeypatch, capsys) -> None:
    """Cells and their wrong views per true class, from `true_class` where the CSV has it and from
    the file's class folder in any case where not; a file that is not such a CSV is one line."""
    mod = load("cell_errors")
    old = tmp_path / "old.csv"  # before 0.11: no true_class column, folders as the user named them
    old.write_text("file,class\neosinophil/a.jpeg,EOSINOPHIL\nEosinophil/b.jpeg,NEUTROPHIL\n"
                   "NEUTROPHIL/c.jpeg,NEUTROPHIL\n")
    new = tmp_path / "new.csv"
    new.write_text("file,class,true_class\nx/a.jpeg,EOSINOPHIL,EOSINOPHIL\nx/b.jpeg,NEUTROPHIL,EOSINOPHIL\n"
                   "x/c.jpeg,NEUTROPHIL,NEUTROPHIL\n")
    tables = []
    for csv_path in (old, new):
        monkeypatch.setattr("sys.argv", ["cell_errors.py", str(csv_path)])  # names no TEST file knows: a cell each
        assert mod.main() == 0
        tables.append([line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")])
    for table in tables:
        assert table[1:] == ["| EOSINOPHIL | 2 | 1 | 100-100% | NEUTROPHIL 1 | — |", "| NEUTROPHIL | 1 | 0 | — | — | — |"]
    marked = tmp_path / "marked.csv"  # a card's CSV: which wrong views were marked, cell by cell
    marked.write_text("file,class,needs_review,true_class\nx/a.jpeg,NEUTROPHIL,yes,EOSINOPHIL\n"
                      "x/b.jpeg,NEUTROPHIL,no,EOSINOPHIL\nx/c.jpeg,NEUTROPHIL,no,NEUTROPHIL\n")
    monkeypatch.setattr("sys.argv", ["cell_errors.py", str(marked)])
    assert mod.main() == 0
    assert "| EOSINOPHIL | 2 | 2 | 100-100% | NEUTROPHIL 2 | 1 of 2 (by cell: 1/1, 0/1) |" in capsys.readouterr().out
    # A screened folder's evaluation leaves the class of a photo given no type blank: the network's reading is its
    # largest p_ column, as the figures score it (a blank was counted as a wrong view going to "")
    screened = tmp_path / "screened.csv"
    screened.write_text("file,class,p_eosinophil,p_lymphocyte,p_monocyte,p_neutrophil,needs_review,true_class\n"
                        "x/a.jpeg,,0.1,0.2,0.3,0.4,,EOSINOPHIL\nx/b.jpeg,,0.7,0.1,0.1,0.1,,EOSINOPHIL\n"
                        "x/c.jpeg,NEUTROPHIL,0.1,0.1,0.1,0.7,no,NEUTROPHIL\n")
    monkeypatch.setattr("sys.argv", ["cell_errors.py", str(screened)])
    assert mod.main() == 0
    assert "| EOSINOPHIL | 2 | 1 | 100-100% | NEUTROPHIL 1 | 0 of 1 (by cell: 0/1) |" in capsys.readouterr().out
    # A wrong view given no type by the screening is one a user is warned of: its needs_review is blank, so it was
    # counted as not marked (a screened folder's wrong views that were refused read as unflagged)
    screened.write_text("file,class,p_eosinophil,p_lymphocyte,p_monocyte,p_neutrophil,needs_review,verdict,true_class\n"
                        "x/a.jpeg,,0.1,0.2,0.3,0.4,,not a white blood cell,EOSINOPHIL\n"
                        "x/b.jpeg,NEUTROPHIL,0.1,0.1,0.1,0.7,no,confident,EOSINOPHIL\n")
    assert mod.main() == 0
    out = capsys.readouterr().out
    assert "wrong views marked *needs review* or given no type |" in out
    assert "| EOSINOPHIL | 2 | 2 | 100-100% | NEUTROPHIL 2 | 1 of 2 (by cell: 1/1, 0/1) |" in out
    monkeypatch.setattr("sys.argv", ["cell_errors.py", str(tmp_path / "gone.csv")])
    with pytest.raises(SystemExit):
        mod.main()
    assert "gone.csv: No such file or directory" in capsys.readouterr().err
    # The split is the one the metrics.json beside the CSV names (cells keyed as `wbc evaluate` keyed them);
    # another --split is refused.
    ev = tmp_path / "ev"
    ev.mkdir()
    (ev / "predictions.csv").write_text(marked.read_text())
    (ev / "metrics.json").write_text('{"data": "somewhere/images/TEST_SIMPLE"}')
    outs = []
    for argv in ([], ["--split", "TEST_SIMPLE"]):
        monkeypatch.setattr("sys.argv", ["cell_errors.py", str(ev / "predictions.csv"), *argv])
        assert mod.main() == 0
        outs.append(capsys.readouterr().out)
    assert outs[0] == outs[1]
    monkeypatch.setattr("sys.argv", ["cell_errors.py", str(ev)])  # the evaluation's folder: "Is a directory"
    assert mod.main() == 0 and capsys.readouterr().out == outs[0]
    monkeypatch.setattr("sys.argv", ["cell_errors.py", str(ev / "predictions.csv")])
    seen: list[str] = []
    monkeypatch.setattr(mod, "cell_key", lambda cls, name, split: seen.append(split) or f"{cls}/{name}")
    assert mod.main() == 0 and set(seen) == {"TEST_SIMPLE"}
    capsys.readouterr()
    monkeypatch.setattr("sys.argv", ["cell_errors.py", str(ev / "predictions.csv"), "--split", "TEST"])
    with pytest.raises(SystemExit):
        mod.main()
    assert "--split TEST: the metrics.json beside" in capsys.readouterr().err
    (tmp_path / "photo.jpg").write_bytes(bytes(range(256)))
    for argv, says in ((["--split", "NOPE"], "invalid choice: 'NOPE'"), ([], "photo.jpg: not a CSV file")):
        monkeypatch.setattr("sys.argv", ["cell_errors.py", str(tmp_path / "photo.jpg"), *argv])
        with pytest.raises(SystemExit):
            mod.main()
        assert says in capsys.readouterr().err


def test_scripts_give_errors_in_one_line(tmp_path) -> None:
    """A benchmark script's WbcError (a missing cross-validation or data folder) and a bad count are one
    line and exit 2, as the `wbc` command's, not a traceback."""
    import subprocess
    import sys

    from conftest import BENCHMARKS

    # magnification.py meets the missing data set first where there is none (CI), the missing folds here.
    for argv, says in ((["magnification.py", "--cv", str(tmp_path / "none")], "magnification.py: error: "),
                       (["split_stats.py", "--data", str(tmp_path / "none")], "no such folder"),
                       (["white_range.py", "--every", "0"], "--every: 0: choose 1 or more"),
                       # a path that names no cross-validation: not "needs at least two fold runs"
                       (["calibration_methods.py", str(tmp_path / "none")], "none: no such folder; give a cross-"),
                       (["warm_cast.py", "--warm-spread", "-1"], "--warm-spread -1.0: choose bounds above 1"),
                       (["views.py", str(tmp_path), "--folds", "-1"], "--folds: -1: choose 0 or more")):
        r = subprocess.run([sys.executable, str(BENCHMARKS / argv[0]), *argv[1:]], capture_output=True, text=True)
        assert r.returncode == 2, (argv, r.stderr)
        assert says in r.stderr and "Traceback" not in r.stderr, (argv, r.stderr)


def test_context_share_counts_each_input_pixel_once(capsys: pytest.CaptureFixture[str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """context_share.py on the fixtures: each row's real field, mirrored and fill shares add up to 100%,
    and the widened crop mirrors less of the input than the plain one."""
    import sys

    from conftest import FIXTURE_IMAGES, load_benchmark

    pytest.importorskip("torch")
    script = load_benchmark("context_share")
    monkeypatch.setattr(sys, "argv", ["context_share.py", "--data", str(FIXTURE_IMAGES), "--every", "2", "--draws", "2"])
    assert script.main() == 0
    rows = [line.split("|")[1:-1] for line in capsys.readouterr().out.splitlines() if line.startswith("| 0 ") or line.startswith("| 30 ")]
    shares = {int(r[0]): [float(c.strip().rstrip("%")) for c in r[2:]] for r in rows}
    assert set(shares) == {0, 30}
    assert all(abs(sum(v) - 100) < 0.2 for v in shares.values()), shares
    assert shares[30][1] < shares[0][1]


def test_side_by_side_refuses_an_unwritable_table_before_training(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """run.py --md in a folder that cannot be made is refused at once (it failed after 46 minutes of
    training); the section writer makes a missing folder."""
    import sys

    from conftest import load_benchmark

    run = load_benchmark("run")
    (tmp_path / "a-file").write_text("")
    monkeypatch.setattr(run, "one", lambda *a, **k: pytest.fail("trained before checking --md"))
    monkeypatch.setattr(sys, "argv", ["run.py", "--md", str(tmp_path / "a-file" / "bench.md"), "--work", str(tmp_path / "w")])
    assert run.main() == 1
    assert "bench.md: cannot write it" in capsys.readouterr().err
    run.write_section(tmp_path / "new" / "bench.md", "body")
    assert "body" in (tmp_path / "new" / "bench.md").read_text()


@pytest.mark.parametrize("done", ["reused", "resumed", "trained"])
def test_side_by_side_calls_a_run_reused_only_when_it_was(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          done: str) -> None:
    """run.py's row for a network says "reused" only where train_or_reuse reused a finished run: a resumed or new
    training is this run's own (every run read as reused when train_or_reuse began returning what it did)."""
    pytest.importorskip("torch")
    import wbc.crossval
    import wbc.ship

    run = load("run")
    monkeypatch.setattr(wbc.crossval, "train_or_reuse", lambda cfg, where: done)
    card = {"metrics": {"test": {"accuracy": 0.5}}, "training": {"epochs_run": 1, "best_epoch": 1, "wall_seconds": 2.0},
            "parameters": 10, "flops_per_image": 1e6, "onnx_bytes": 1e6, "tta_views": 1, "temperature": 1.0}
    monkeypatch.setattr(wbc.ship, "export_and_report", lambda *a, **k: card)
    monkeypatch.setattr(run, "speed", lambda *a: {})
    row = run.one("wbcnet", 0, 1, tmp_path, 1)
    assert row["reused"] is (done == wbc.crossval.REUSED) and row["test"] == {"accuracy": 0.5}


def test_robustness_counts_reasons_by_their_heads() -> None:
    """A dark photo's reason names its own share of the white; the table counts it with its kind."""
    rob = load("robustness")
    heads = rob.reason_heads({
        "the photo is much darker than the training images (its white at 41% of theirs): take it with more light; "
        "as photographed, no stained nucleus found (blank field, red cells only)": 3,
        "the photo is much darker than the training images (its white at 30% of theirs): take it with more light; "
        "as photographed, no stained nucleus found (blank field, red cells only)": 2,
        "no stained nucleus found (blank field, red cells only)": 4,
        "out of focus: too blurred to judge the cell": 1,
        "only 56x56 px: too small or too tight a crop to judge a cell (80 px or more a side)": 1,
        "only 72x60 px: too small or too tight a crop to judge a cell (80 px or more a side)": 1})
    assert heads == {"the photo is much darker than the training images": 5, "no stained nucleus found": 4,
                     "out of focus": 1, "only NxN px": 2}


def test_crop_size_cuts_around_the_cell_inside_the_photo() -> None:
    """crop_size.tight_crop: a square of the side asked, around the cell, moved inside the photo
    where the cell sits near an edge."""
    from wbc.imaging import locate_cell

    from test_imaging import smear

    cs = load("crop_size")
    rgb = smear(cy=150, cx=90)
    loc = locate_cell(rgb)
    crop = cs.tight_crop(rgb, 64)
    assert crop.shape == (64, 64, 3)
    assert abs(locate_cell(crop).cy - 32) <= 4 and abs(locate_cell(crop).cx - 32) <= 4, loc
    edge = smear(cy=20, cx=15)
    assert cs.tight_crop(edge, 96).shape == (96, 96, 3)
    assert (cs.tight_crop(edge, 96) == edge[:96, :96]).all()


def test_other_cells_counts_a_two_cell_photo_and_none_on_one_cell_files(tmp_path, capsys) -> None:
    """A two-box original (the two-cell fixture, enlarged to 640 x 480) is warned with its other box
    found, at each floor up to its second nucleus's size and not beyond; the two one-cell files are not;
    the sheet and the shifts table are written."""
    from PIL import Image

    from conftest import FIXTURES

    oc = load("other_cells")
    two_file_data_set(tmp_path)
    fake_original(tmp_path, Image.open(FIXTURES / "two-white-cells.jpeg"), 10, [(23, 229, 204, 421), (239, 253, 510, 470)])
    assert oc.main(["--data", str(tmp_path), "--every", "1", "--floors", "400", "100000", "--shifts-every", "1",
                    "--sheet", str(tmp_path / "sheet.png"), "--mosaics", "1"]) == 0
    out = capsys.readouterr().out
    assert "| two boxes or more | neither (a duplicate photograph) | 1 | 1 (1 in the other box) | 0 (0 in the other box) |" in out
    assert "| TRAIN | unknown | 1 | 0 (0.0%) | 0 (0.0%) | 0 |" in out and "| TEST | unknown | 1 | 0 (0.0%) | 0 (0.0%) | 0 |" in out
    assert "one box 0 of 0; two boxes 1 of 1 (1 in the other box)" in out
    assert re.search(r"Typed nuclei that lie whole in their field: 2 of these files, the smallest \d{3,} stained px; 0 under "
                     r"800", out), out
    # no one-box files to count under the shifts; the two-box photo's other box is found clean and warm
    assert "| clean | 0 (0.0%) | 0 | 0 | 1 |" in out
    assert "| white balance: warm (R x1.1, B x0.85) | 0 (0.0%) | 0 | 0 | 1 |" in out
    assert Image.open(tmp_path / "sheet.png").size == (320 * 4, 240)
    # nine copies of the two-cell field in one photo: a white cell, warned of another, at 1x as at 0.5x
    assert "| 1.0x | 960 x 720 | 1 | 1 |" in out and "| 0.5x | 480 x 360 | 1 | 1 |" in out, out


def test_scale_cv_packs_crops_and_cross_validates_them(tmp_path: Path) -> None:
    """scale_cv.py packs TRAIN's crops, trains a recipe's folds on the pack alone (the data set
    moved away) and pools the held-out views into cv.py's table; the folds are those dealt where the
    pack was made."""
    import json
    import shutil
    import subprocess
    import sys

    from conftest import BENCHMARKS, FIXTURE_IMAGES, load_benchmark

    pytest.importorskip("torch")
    # Five cells per class, for five folds: each fixture image under a name of its own is its own cell.
    root = tmp_path / "images"
    for c in ("EOSINOPHIL", "LYMPHOCYTE", "MONOCYTE", "NEUTROPHIL"):
        (root / "TRAIN" / c).mkdir(parents=True)
        for i, f in enumerate(sorted((FIXTURE_IMAGES / "TRAIN" / c).glob("*.jpeg"))[:5]):
            shutil.copy(f, root / "TRAIN" / c / f"cell{i}.jpeg")
    def scale_cv(*argv: str, status: int = 0) -> str:  # as a user runs it: its runs are spawned processes that import it
        r = subprocess.run([sys.executable, str(BENCHMARKS / "scale_cv.py"), *argv], capture_output=True, text=True)
        assert r.returncode == status, r.stdout + r.stderr
        assert "Traceback" not in r.stderr, r.stderr
        return r.stdout + r.stderr

    pack = tmp_path / "pack.npz"
    scale_cv("pack", "--data", str(root), "--out", str(pack))
    x, samples, folds = load_benchmark("scale_cv").unpack(pack)
    assert x.shape == (20, 96, 96, 3) and len({s.cell for s in samples}) == 20 and sorted(set(folds)) == [0, 1, 2, 3, 4]
    shutil.rmtree(root)
    work = tmp_path / "work"
    scale_cv("run", "--pack", str(pack), "--work", str(work), "--device", "cpu", "--workers", "1", "--epochs", "1",
             "--recipes", "base", "--folds", "0", "1")
    out = json.loads((work / "scale.json").read_text())
    assert set(out["runs"]) == {"base/fold0", "base/fold1"} and all(r["folds_as_packed"] for r in out["runs"].values())
    assert out["results"]["base"]["calibrated"]["n_files"] == 8  # two folds of one cell per class
    table = (work / "scale.md").read_text()
    assert table.startswith("Device cpu, 1 runs at once; epochs: base 1; every cell; folds as the pack dealt them: yes")
    assert "| base | 2 of 5 (0, 1) | 8 / 8 |" in table
    with np.load(work / "scale.npz") as z:
        assert z["base_fold0_logits"].shape == (8, 4, 4)
    assert scale_cv("render", str(work)) == table  # the folder or its scale.json
    # A finished run is reused, and the folds it did not run keep their rows; a run of other options
    # is refused before any starts, and the results in place are kept.
    again = ["run", "--pack", str(pack), "--work", str(work), "--device", "cpu", "--workers", "1", "--recipes", "base"]
    assert "held-out accuracy" in scale_cv(*again, "--epochs", "1", "--folds", "0")
    assert json.loads((work / "scale.json").read_text())["runs"].keys() == out["runs"].keys()
    refused = scale_cv(*again, "--epochs", "2", "--folds", "0", status=2)
    assert "not the run asked for: it differs in epochs (1 there, 2 asked)" in refused and "choose another --work" in refused
    assert json.loads((work / "scale.json").read_text())["results"] == out["results"]
    assert "--folds 0 5: the folds are 0 to 4" in scale_cv(*again, "--folds", "0", "5", status=2)
    scale_cv(*again, "--epochs", "1", "--folds", "2", "--recipes", "wide")  # another recipe, on a fold of its own
    table = (work / "scale.md").read_text()
    assert "| base | 2 of 5 (0, 1) | 8 / 8 |" in table and "| wide | 1 of 5 (2) | 4 / 4 |" in table
    assert "compare only rows with the same folds" in table
    # Results of other options in --results are kept, not mixed or overwritten; nor is a rewritten pack pooled.
    before = (work / "scale.json").read_text()
    assert "holds results of other options" in scale_cv(*again[:4], str(tmp_path / "w3"), "--results", str(work),
                                                         *again[5:], "--epochs", "2", "--folds", "0", status=2)
    assert (work / "scale.json").read_text() == before
    repacked = tmp_path / "repacked.npz"
    shutil.copy(pack, repacked)
    with np.load(repacked) as z:
        np.savez(repacked, **{**dict(z), "quality": np.int64(50)})
    moved = ["--pack", str(repacked), "--work", str(work)]
    assert "trained on another pack" in scale_cv("run", *moved, *again[5:], "--epochs", "1", "--folds", "0", status=2)
    assert "--epochs 0: choose 1 or more" in scale_cv(*again, "--epochs", "0", status=2)
    missing = scale_cv("run", "--pack", str(tmp_path / "none.npz"), "--work", str(tmp_path / "w2"), "--device", "cpu",
                       status=2)
    assert "none.npz: no such file; make a pack with" in missing and not (tmp_path / "w2").exists()
    assert "not a pack that `scale_cv.py pack` wrote" in scale_cv("run", "--pack", str(work / "scale.npz"), "--work",
                                                                 str(tmp_path / "w2"), "--device", "cpu", status=2)
    assert "not a scale.json that `scale_cv.py run` wrote" in scale_cv("render", str(pack), status=2)


def test_gpu_paths_runs_its_checks_on_the_cpu() -> None:
    """gpu_paths.py (the device check of distillation, resuming across devices and the CLI) runs every
    check on the CPU too and says each passed."""
    import subprocess
    import sys

    from conftest import BENCHMARKS

    pytest.importorskip("torch")
    r = subprocess.run([sys.executable, str(BENCHMARKS / "gpu_paths.py"), "--device", "cpu"], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 3 and all(": ok" in line for line in lines), lines
    assert lines[0].startswith("teacher and student on cpu: ok (student's validation accuracy")


def test_focus_bound_table_on_the_fixture(capsys) -> None:
    """benchmarks/focus.py on the fixture's TRAIN: a row per variant; the cells as photographed and
    blurred by 1.5 px are in focus, blurred by 12 px out of it, framed or not; the grey measure read the
    framed 12 px blur as sharp."""
    from conftest import FIXTURE_IMAGES

    focus = load("focus")
    assert focus.main(["--data", str(FIXTURE_IMAGES), "--every", "1"]) == 0
    rows = {r.split("|")[1].strip(): [c.strip() for c in r.split("|")[2:-1]] for r in capsys.readouterr().out.splitlines()
            if r.startswith("| ") and not r.startswith("| variant")}
    assert len(rows) == len(focus.variants())
    assert rows["as photographed"][0] == rows["blur 1.5 px"][0] == "0.0%"
    assert rows["blur 12 px"][0] == rows["blur 12 px, framed"][0] == "100.0%"
    # the grey measure: the frame's edge passed blurred cells it had caught unframed
    assert float(rows["blur 12 px, framed"][1].rstrip("%")) < float(rows["blur 12 px"][1].rstrip("%"))
    # The whole screening: a cell blurred past finding its nucleus is out of focus (75% of these fixture
    # files blurred by 20 px read "no stained nucleus found" before), a sharp corner of red cells is not.
    assert rows["blur 20 px"][3] == rows["blur 16 px"][3] == "100.0% / 0.0%"
    assert rows["corner 120 px"][3].startswith("0.0% / ") and rows["corner 120 px, blur 3 px"][3].startswith("0.0% / ")
    assert rows["as photographed"][3] == "0.0% / 0.0%"
    # A sharp speck on a corner of red cells is no cell out of focus; a blurred cell saved as JPEG is still caught.
    assert all(rows[f"corner 120 px, {d} px speck"][3].startswith("0.0% / ") for d in (11, 15, 19))
    assert float(rows["blur 16 px, JPEG 75"][3].split("%")[0]) >= 50


def test_overexposure_framing_marks_what_it_says(tmp_path, capsys) -> None:
    """Each file is magnified about its cell, brightened and marked three ways: none marked at gain 1, every
    way marks more as the gain rises, the rule's verdict is printed per way, and the figures agree with
    the JSON's."""
    import json

    bench = load("overexposure_framing")
    two_file_data_set(tmp_path)
    assert bench.main(["--data", str(tmp_path), "--every", "1", "--json", str(tmp_path / "o.json")]) == 0
    out = capsys.readouterr().out
    res = json.loads((tmp_path / "o.json").read_text())
    pct = res["marked_pct"]
    assert res["files"] == 1 and len(pct) == 3 * 4 * 3  # TRAIN's one file
    assert all(v == 0 for k, v in pct.items() if " gain 1 " in k)
    assert pct["1x gain 1.4 field"] >= pct["1x gain 1.2 field"] and pct["1x gain 1.4 field"] > 0
    assert "Rule, outside:" in out and "Rule, scaled:" in out
    for way, verdict in res["rule"].items():
        assert (f"Rule, {way}: " in out) and ("-> adopt" in out.split(f"Rule, {way}: ")[1].splitlines()[0]) == all(verdict.values())
    # magnified(): the middle 1/m about a point, kept inside the field, at the field's size
    rgb = np.arange(240 * 320 * 3, dtype=np.uint32).reshape(240, 320, 3).astype(np.uint8)
    assert bench.magnified(rgb, 5, 5, 2.0).shape == rgb.shape and bench.magnified(rgb, 5, 5, 1.0) is rgb


def test_phone_resolution_compares_the_largest_shrink(tmp_path, capsys) -> None:
    """TRAIN's file enlarged to a phone's size is read once per largest shrink, and the shrinking is left
    as it was after (the benchmark changes the module's steps only while it runs)."""
    import wbc.imaging
    import wbc.photo_checks

    bench = load("phone_resolution")
    two_file_data_set(tmp_path)
    kept = wbc.imaging.REDUCTIONS
    assert bench.main(["--data", str(tmp_path), "--files", "1", "--size", "1600", "1200", "--most", "2", "8"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == ["shrunk 2x at most", "shrunk 8x at most"]
    assert all(" of 1 typed" in line for line in lines)
    assert "shrunk by 2x 1" in lines[0] and "shrunk by 2x 1" not in lines[1]  # 5x enlarged: 2x is not enough
    assert wbc.imaging.REDUCTIONS == wbc.photo_checks.REDUCTIONS == kept


def fixture_splits(root) -> int:  # noqa: ANN001
    """A data set under `root` whose TRAIN and TEST each hold the fixture TRAIN images (3 cells a class); their count."""
    import shutil

    from conftest import FIXTURE_IMAGES

    images = root / "dataset2-master" / "images"
    for split in ("TRAIN", "TEST"):
        shutil.copytree(FIXTURE_IMAGES / "TRAIN", images / split)
    return sum(1 for _ in (images / "TEST").rglob("*.jpeg"))


def rows_of(out: str) -> dict[str, list[str]]:
    """A printed markdown table's rows, by their first cell."""
    return {cells[0]: cells[1:] for line in out.splitlines() if line.startswith("| ") and "---" not in line
            for cells in [[c.strip() for c in line.strip("|").split("|")]]}


def test_pages_reads_the_photo_on_a_page_and_refuses_a_slide(tmp_path, capsys) -> None:  # noqa: ANN001
    """benchmarks/pages.py on the fixture cells: in a page's margin, among paragraphs and under a browser's
    bar each reads as given, none marked overexposed; on a purple or a blue slide none is typed."""
    n = fixture_splits(tmp_path)
    load("pages").main(["--data", str(tmp_path), "--every", "1"])
    rows = rows_of(capsys.readouterr().out)
    given = rows["as given"]
    assert int(given[0].split(" / ")[0]) >= n - 1 and given[0].endswith(f"/ {n}")
    for layout in ("white page margin (40 px)", "among paragraphs of text", "browser: grey bar, white page"):
        assert rows[layout][:3] == given[:3] and rows[layout][3] == "0", (layout, rows[layout])
    for layout in ("purple slide, white title", "blue slide, white title"):
        assert rows[layout][0] == f"0 / {n}" and rows[layout][4] == str(n), (layout, rows[layout])
    assert int(rows["plate of two photos"][5]) >= n - 2


def test_edited_photos_read_as_given_or_say_why_not(tmp_path, capsys) -> None:  # noqa: ANN001
    """benchmarks/edited_photos.py on the fixture cells: rotated on a white canvas none is marked overexposed;
    a magenta cast is typed and read right nearly as given (21 of 24 right before its scale was judged matched),
    one past the matching is not typed; an arrow by the cell makes each one 'cannot judge', one away from it
    changes nothing."""
    n = fixture_splits(tmp_path)
    load("edited_photos").main(["--data", str(tmp_path), "--every", "1"])
    rows = rows_of(capsys.readouterr().out)
    given = rows["as given"]
    for edit in ("rotated 10 degrees, white canvas", "rotated 25 degrees, white canvas"):
        assert rows[edit][3] == "0" and int(rows[edit][0].split(" / ")[0]) >= n - 2, (edit, rows[edit])
    magenta = rows["magenta cast (green x0.8)"]
    assert int(magenta[0].split(" / ")[0]) >= n - 1 and int(magenta[1]) >= n - 1 and magenta[4] == "0", magenta
    # Past the matching, a cell found through the cast is told of the cast (8 of 24 were typed, 1 right)
    assert int(rows["strong magenta cast (green x0.7)"][0].split(" / ")[0]) <= 1, rows["strong magenta cast (green x0.7)"]
    for edit in ("red arrow by the cell", "yellow arrow by the cell"):
        assert rows[edit][0] == f"0 / {n}" and rows[edit][4] == str(n), (edit, rows[edit])
    assert rows["red arrow away from the cell"][:3] == given[:3]


def test_warm_cast_types_more_at_the_wider_bound(tmp_path, capsys) -> None:  # noqa: ANN001
    """benchmarks/warm_cast.py on the fixture cells: both bounds' rows for every cast; the halogen-like cast
    (R x1.2, G x0.95, B x0.65) is typed more at 2 than at 1.5, a cool cast alike at both; the bound is put back."""
    from wbc import white_balance

    n = fixture_splits(tmp_path)
    load("warm_cast").main(["--data", str(tmp_path), "--every", "1"])
    assert white_balance.WARM_SPREAD_MAX == 2.0
    out = capsys.readouterr().out
    typed = {(cells[0], cells[1]): int(cells[2].split(" / ")[0]) for cells in
             ([c.strip() for c in line.strip("|").split("|")] for line in out.splitlines() if line.startswith("| 1") or line.startswith("| 2"))}
    assert len(typed) == 18
    assert typed[("2", "(1.2, 0.95, 0.65)")] > typed[("1.5", "(1.2, 0.95, 0.65)")]
    assert typed[("2", "(0.75, 0.95, 1.3)")] == typed[("1.5", "(0.75, 0.95, 1.3)")]
    assert typed[("1.5", "(1.0, 1.0, 1.0)")] == n


def test_cv_dry_run_trains_a_fold_briefly_and_keeps_nothing(full_data: Path, tmp_path: Path) -> None:
    """`cv.py --dry-run` trains and scores the folds asked for, for the shortest schedule on a few cells a class,
    in a temporary folder it removes: --work is not made, and the summary and table are printed. With --use or
    --json (which would keep or reuse something) it is refused before anything trains."""
    import os
    import subprocess
    import sys

    from conftest import BENCHMARKS

    env = {**os.environ, "TMPDIR": str(tmp_path / "tmp")}
    (tmp_path / "tmp").mkdir()
    argv = [sys.executable, str(BENCHMARKS / "cv.py"), "--name", "x", "--work", str(tmp_path / "cv"),
            "--data", str(full_data), "--dry-run"]
    r = subprocess.run([*argv, "--folds", "0"], capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stderr
    assert "fold 0: (trained)" in r.stdout and "| x | 1 of 5 (0) |" in r.stdout  # its folder gone: not named
    assert r.stdout.rstrip().endswith("dry run done: fold 0 trains and is scored (2 epoch(s) on 5 cells a "
                                      "class); nothing kept")
    assert not (tmp_path / "cv").exists() and not list((tmp_path / "tmp").glob("wbc-cv-dry-run.*"))
    for extra, says in ((["--use", "0=runs/x"], "--dry-run trains every fold afresh, briefly, and keeps nothing"),
                        (["--json", str(tmp_path / "j.json")], "--dry-run trains every fold afresh"),
                        (["--render", str(tmp_path / "cv.json")], "--render prints earlier results and --dry-run trains"),
                        # too few cells for the folds, said in cv.py's options before any fold (it named --val-fraction,
                        # which cv.py lacks, after "fold0: training"), and a setting no run takes likewise
                        (["--limit-cells", "2"], "--limit-cells 2: at least 5, a cell of each class for each of the 5"),
                        (["--limit-cells", "0"], "limit")):
        r = subprocess.run([*argv, *extra], capture_output=True, text=True, timeout=120, env=env)
        assert r.returncode == 2 and says in r.stderr and "training" not in r.stdout, (extra, r.stderr)
    assert not (tmp_path / "cv").exists() and not (tmp_path / "j.json").exists()
    # SIGTERM (`timeout`, `kill`) as Ctrl+C: the temporary folder is removed (it was left, with the fold's run)
    import signal
    import time

    p = subprocess.Popen([*argv, "--folds", "0"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    for line in p.stdout:
        if "fold0: training" in line:
            time.sleep(2)
            p.send_signal(signal.SIGTERM)
            break
    p.communicate(timeout=120)
    assert p.returncode == 130 and not list((tmp_path / "tmp").glob("wbc-cv-dry-run.*"))


def _coverage_table(*argv: str) -> list[list[str]]:
    """interval_coverage.py's table rows (cells stripped) for a run on the synthetic layout."""
    import subprocess
    import sys

    from conftest import BENCHMARKS

    r = subprocess.run([sys.executable, str(BENCHMARKS / "interval_coverage.py"), "--layout", "synthetic",
                        "--truth-draws", "2000", *argv], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "Run time" in r.stdout and "synthetic layout: 2480 files, 68 cells" in r.stdout, r.stdout
    lines = [line for line in r.stdout.splitlines() if line.startswith("|")]
    assert lines[1] == "|---" * 9 + "|", lines[:2]
    return [[c.strip() for c in line.split("|")[1:-1]] for line in lines[2:]]


def test_interval_coverage_counts_each_interval_on_both_sides() -> None:
    """interval_coverage.py on the synthetic layout: one row per interval, coverage and both misses shares that add
    up to 1; a calibrated model's ECE interval never holds its true 0 (a resampled ECE is above 0), while with the
    degenerate truth (every view right, confidence 1) every interval holds it."""
    rows = _coverage_table("--sims", "30")
    assert len(rows) == 7 and all(len(r) == 9 for r in rows), rows
    coverage = {}
    for r in rows:
        share = float(r[5].split()[0])
        low, high = (float(v) for v in r[5].split()[1].strip("()").split("-"))
        below, above = float(r[6]), float(r[7])
        assert 0 <= low <= share <= high <= 1 and 0 <= below <= 1 and 0 <= above <= 1, r
        assert abs(share + below + above - 1) <= 0.0015 + 1e-9, r  # each printed to 3 places
        coverage[(r[0], r[1], r[2])] = share
    assert coverage[("ECE, calibrated", "bootstrap over cells (ece_ci95)", "population ECE, 0")] == 0
    assert max(coverage.values()) > 0  # not all misses either
    degenerate = _coverage_table("--sims", "25", "--accuracy", "1", "--view-error", "0", "--ece", "0")
    assert [r[3] for r in degenerate] == ["1.0000"] * 5 + ["0.0000"] * 2, degenerate
    assert all(r[5].startswith("1.000 ") and r[6] == r[7] == "0.000" for r in degenerate), degenerate


@pytest.mark.parametrize("script", ["edited_photos", "other_cells", "overexposure_framing", "pages", "phone_resolution",
                                    "warm_cast"])
def test_scripts_name_a_missing_data_folder_in_one_line(script: str, tmp_path: Path) -> None:
    """A data set folder that is not there is one line naming it, exit status 2, as the other scripts say it (these
    six were not started through entry.run_script: a DataError traceback)."""
    import subprocess
    import sys

    from conftest import BENCHMARKS

    r = subprocess.run([sys.executable, str(BENCHMARKS / f"{script}.py"), "--data", str(tmp_path / "gone")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.startswith(f"{script}.py: error: {tmp_path / 'gone'}: ") and r.stderr.count("\n") == 1, r.stderr


def test_magnification_refuses_a_scale_of_zero_or_below(tmp_path, capsys) -> None:
    """--scales 0 or -1 (or NaN) is refused by argparse naming the value, before any photo is read (it was a
    ValueError traceback from the resize)."""
    mag = load("magnification")
    for bad in ("0", "-1", "nan"):
        with pytest.raises(SystemExit) as e:
            mag.main(["--data", str(tmp_path / "gone"), "--scales", "1", bad])
        assert e.value.code == 2
        err = capsys.readouterr().err
        assert f"--scales {bad}: a magnification is a number above 0" in err, err


def test_ablation_render_names_what_it_cannot_read(tmp_path: Path, monkeypatch, capsys) -> None:
    """`ablation.py --render` of something that is not an ablation.py --json file is one line naming it, exit 2 (a
    missing file, a folder, not JSON, another JSON: tracebacks); its own file still renders; no run and no --render
    is refused (it printed an empty table)."""
    import subprocess
    import sys

    from conftest import BENCHMARKS

    cases = {"gone.json": (None, "cannot be read (No such file or directory)"), "adir": ("dir", "a folder; name"),
             "text.json": ("not json", "not JSON"), "list.json": ("[1, 2]", "not an ablation.py result"),
             "part.json": ('{"runs/a": {"mflops": 3}}', "lacks a figure the table needs (KeyError")}
    for name, (content, says) in cases.items():
        p = tmp_path / name
        if content == "dir":
            p.mkdir()
        elif content is not None:
            p.write_text(content)
        r = subprocess.run([sys.executable, str(BENCHMARKS / "ablation.py"), "--render", str(p)], capture_output=True,
                           text=True, timeout=120)
        assert r.returncode == 2 and r.stderr.startswith(f"ablation.py: error: {p}: {says}"), (name, r.stderr)
        assert "Traceback" not in r.stderr
    ablation = load("ablation")
    monkeypatch.setattr("sys.argv", ["ablation.py", "--render", str(BENCHMARKS / "ablation.json")])
    assert ablation.main() == 0
    assert "| e10-light-80 (best.pt) | 31 | 598 | 80 |" in capsys.readouterr().out
    monkeypatch.setattr("sys.argv", ["ablation.py"])
    with pytest.raises(SystemExit) as e:
        ablation.main()
    assert e.value.code == 2 and "give the run folders to compare" in capsys.readouterr().err


def test_phone_resolution_and_overexposure_framing_refuse_counts_below_one(tmp_path, capsys) -> None:
    """A count of 0 or below (or a largest shrink below the tool's first step) is refused by argparse naming it,
    before any file is read: they were tracebacks (ZeroDivisionError, ValueError, IndexError, a zero slice step), and
    --files -1 / --every -1 read every file backwards."""
    cases = {"phone_resolution": [(["--files", "0"], "--files: 0: choose 1 or more"),
                                  (["--files", "-1"], "--files: -1: choose 1 or more"),
                                  (["--size", "-4", "3"], "--size: -4: choose 1 or more"),
                                  (["--most", "8", "-1"], "--most -1: choose 1.41"),
                                  (["--most", "1"], "--most 1: choose 1.41")],
             "overexposure_framing": [(["--every", "0"], "--every: 0: choose 1 or more"),
                                      (["--every", "-1"], "--every: -1: choose 1 or more")]}
    for script, bad in cases.items():
        bench = load(script)
        for argv, says in bad:
            with pytest.raises(SystemExit) as e:
                bench.main(["--data", str(tmp_path / "gone"), *argv])
            assert e.value.code == 2 and says in capsys.readouterr().err, (script, argv)


def test_outputs_that_cannot_be_written_are_refused_before_the_work(tmp_path: Path) -> None:
    """An output path that cannot be written (here in a "folder" that is a file) is one line naming it, exit 2, before
    any image is read or fold trained: robustness.py failed so after its 9 minutes, cv.py after its folds' hours."""
    import subprocess
    import sys

    from conftest import BENCHMARKS, FIXTURE_IMAGES

    blocker = tmp_path / "afile"
    blocker.write_text("x")
    bad = blocker / "out.json"
    data = ["--data", str(FIXTURE_IMAGES.parent)]
    cases = {"ablation": [str(tmp_path), "--json"], "calibration_methods": [str(tmp_path), "--json"],
             "magnification": [*data, "--json"], "other_cells": [*data, "--sheet"],
             "overexposure": ["--cv", str(tmp_path), "--json"], "overexposure_framing": [*data, "--json"],
             "robustness": [*data, "--md"], "screening": [*data, "--list-passing"], "views": [str(tmp_path), "--json"],
             "cv": ["--name", "x", "--work", str(tmp_path / "cv"), *data, "--folds", "0", "--json"]}
    for script, argv in cases.items():
        r = subprocess.run([sys.executable, str(BENCHMARKS / f"{script}.py"), *argv, str(bad)], capture_output=True,
                           text=True, timeout=120)
        assert r.returncode == 2 and r.stderr.startswith(f"{script}.py: error: {bad}: cannot write it"), (script, r.stderr)
        assert "Traceback" not in r.stderr and r.stderr.count("\n") == 1, (script, r.stderr)
    assert not (tmp_path / "cv").exists()


def test_run_refuses_a_work_file_and_a_shipped_folder_without_a_card_before_training(tmp_path: Path) -> None:
    """run.py: --work naming a file (a NotADirectoryError traceback) and --shipped naming a folder without model.json
    (refused only after the minutes of training) are one line each, before anything trains."""
    import shutil
    import subprocess
    import sys

    from conftest import BENCHMARKS

    (tmp_path / "afile").write_text("x")
    onnx_only = tmp_path / "onnx-only"
    onnx_only.mkdir()
    shutil.copy(BENCHMARKS.parent / "models" / "default" / "model.onnx", onnx_only)
    md = ["--md", str(tmp_path / "bench.md")]
    for argv, says in (([*md, "--work", str(tmp_path / "afile")], f"{tmp_path / 'afile'}: is a file, not a folder"),
                       ([*md, "--work", str(tmp_path / "w"), "--shipped", str(onnx_only)],
                        f"{onnx_only / 'model.json'}: the model card that must sit beside model.onnx is missing")):
        r = subprocess.run([sys.executable, str(BENCHMARKS / "run.py"), *argv], capture_output=True, text=True, timeout=120)
        assert r.returncode == 1 and r.stderr.startswith(f"run: {says}") and "Traceback" not in r.stderr, r.stderr
    assert not (tmp_path / "w").exists() and not (tmp_path / "bench.md").exists()


def test_same_outputs_compare_names_a_file_that_is_no_dump(tmp_path, capsys) -> None:
    """`compare` of a missing file, a folder, another file or a dump cut short is one line naming it with exit status
    2 (tracebacks with exit 1, which reads as "the outputs differ"); `dump` writes its file whole or not at all, and
    refuses a path it cannot write before the analyses."""
    from conftest import FIXTURE_IMAGES

    same = load("same_outputs")
    a = tmp_path / "sub" / "a.npz"
    assert same.main(["dump", str(a), "--every", "20", "--data", str(FIXTURE_IMAGES.parent), "--splits", "TRAIN"]) == 0
    assert [p.name for p in a.parent.iterdir()] == ["a.npz"]  # no temporary file left beside it
    capsys.readouterr()
    (tmp_path / "cut.npz").write_bytes(a.read_bytes()[: a.stat().st_size // 2])
    (tmp_path / "text.npz").write_text("not a dump")
    (tmp_path / "adir").mkdir()
    from wbc.errors import ConfigError

    for name, says in (("gone.npz", "cannot be read (No such file or directory)"), ("adir", "a folder; name a file"),
                       ("text.npz", "not a dump of `same_outputs.py dump`"), ("cut.npz", "not a dump of")):
        with pytest.raises(ConfigError, match="^" + re.escape(f"{tmp_path / name}: {says}")):
            same.main(["compare", str(a), str(tmp_path / name)])
    (tmp_path / "afile").write_text("x")
    from wbc.errors import OutputError

    with pytest.raises(OutputError, match="cannot write it"):
        same.main(["dump", str(tmp_path / "afile" / "b.npz"), "--data", str(tmp_path / "gone")])


def test_same_outputs_compare_names_one_array_as_no_dump(tmp_path) -> None:
    """`compare` of a .npy (one array, as np.save writes) is one line naming it, as another file is: np.load
    gives an array there, not a dump's archive, and its `with` was a TypeError traceback with exit 1 ("the
    outputs differ")."""
    from wbc.errors import ConfigError

    same = load("same_outputs")
    np.save(tmp_path / "one.npy", np.zeros(3))
    said = f"{tmp_path / 'one.npy'}: not a dump of `same_outputs.py dump`"
    with pytest.raises(ConfigError, match="^" + re.escape(said)):
        same.main(["compare", str(tmp_path / "one.npy"), str(tmp_path / "one.npy")])


def test_split_stats_stain_peak_and_train_step_refuse_counts_below_one(tmp_path, capsys) -> None:
    """Counts of 0 or below and an enlargement not above 1 are refused by argparse naming them (tracebacks:
    split_stats --files 0 / -1, stain_peak --magnified -2, train_step --batch-size 0 and --threads 0)."""
    import subprocess
    import sys

    from conftest import BENCHMARKS

    gone = ["--data", str(tmp_path / "gone")]
    cases = [("split_stats", ["--files", "0", *gone], "--files: 0: choose 1 or more"),
             ("split_stats", ["--files", "-1", *gone], "--files: -1: choose 1 or more"),
             ("stain_peak", ["--magnified", "2", "-2", *gone], "--magnified -2: an enlargement is a number above 1"),
             ("stain_peak", ["--timed", "-1", *gone], "--timed: -1: choose 0 or more"),
             ("train_step", ["--batch-size", "0"], "--batch-size: 0: choose 1 or more"),
             ("train_step", ["--threads", "0"], "--threads: 0: choose 1 or more")]
    for script, argv, says in cases:
        r = subprocess.run([sys.executable, str(BENCHMARKS / f"{script}.py"), *argv], capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 2 and says in r.stderr and "Traceback" not in r.stderr, (script, argv, r.stderr)


SCRIPTS = sorted(p.stem for p in Path(__file__).resolve().parents[1].joinpath("benchmarks").glob("*.py")
                 if "\ndef main(" in p.read_text())


@pytest.mark.parametrize("name", SCRIPTS)
def test_every_script_answers_help_with_its_data_default(name: str, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """Every benchmark script answers --help (exit 0, its usage), and where it reads the data set its --data says
    which folder it reads when not given (fourteen said nothing)."""
    import sys

    from conftest import load_benchmark

    mod = load_benchmark(name)
    monkeypatch.setattr(sys, "argv", [f"{name}.py", "--help"])
    with pytest.raises(SystemExit) as e:
        mod.main()
    out = " ".join(capsys.readouterr().out.split())
    assert e.value.code == 0 and "usage:" in out, out
    if "--data DATA" in out:
        assert "--data DATA data set folder (default: WBC_DATA" in out, out


def test_side_by_side_refuses_counts_out_of_range(tmp_path, monkeypatch, capsys) -> None:  # noqa: ANN001
    """run.py's --seed-epochs, --seeds and --threads are refused by argparse out of range, before anything
    trains: --seed-epochs -1 went on to name the wbcnet default in its table, 51 past the replica's recipe."""
    run = load("run")
    for argv, says in ((["--seed-epochs", "-1"], "--seed-epochs: -1: choose 1 to 50 (the replica's recipe allows 50)"),
                       (["--seed-epochs", "51"], "--seed-epochs: 51: choose 1 to 50"),
                       (["--seeds", "0", "-2"], "--seeds: -2: choose 0 or more"),
                       (["--threads", "0"], "--threads: 0: choose 1 or more")):
        monkeypatch.setattr("sys.argv", ["run.py", "--work", str(tmp_path / "w"), *argv])
        with pytest.raises(SystemExit) as e:
            run.main()
        assert e.value.code == 2 and says in capsys.readouterr().err, argv
    assert not (tmp_path / "w").exists()


def test_arch_latency_takes_a_checkpoint_and_refuses_two_rows_of_one_name(tiny_run: Path, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """arch_latency.py times a checkpoint given as a file beside a run folder (a .pt was read as a folder:
    "best.pt/best.pt"), a row each; two runs whose rows would share a name are refused before any export (the
    second's row replaced the first's)."""
    import shutil

    import wbc.ship

    import wbc.export

    monkeypatch.setattr(wbc.ship, "parity_images", lambda data: sorted((FIXTURE_IMAGES / "TRAIN").rglob("*.jpeg"))[:4])
    real_export, exported = wbc.export.export, []

    def export(ckpt: Path, *a: object, **k: object) -> object:
        exported.append(Path(ckpt))
        return real_export(ckpt, *a, **k)

    monkeypatch.setattr(wbc.export, "export", export)
    bench = load("arch_latency")
    monkeypatch.setattr("sys.argv", ["arch_latency.py", str(tiny_run), str(tiny_run / "last.pt"), "--rounds", "1"])
    assert bench.main() == 0
    rows = [line.split(" | ")[0].removeprefix("| ") for line in capsys.readouterr().out.splitlines()[2:]]
    assert rows == [tiny_run.name, f"{tiny_run.name}/last.pt"]
    assert exported == [tiny_run / "best.pt", tiny_run / "last.pt"]  # each row's own model
    monkeypatch.setattr("sys.argv", ["arch_latency.py", str(tiny_run), "--threads", "0"])
    with pytest.raises(SystemExit) as e:
        bench.main()
    assert e.value.code == 2 and "--threads: 0: choose 1 or more" in capsys.readouterr().err
    other = tmp_path / "elsewhere" / tiny_run.name
    shutil.copytree(tiny_run, other)
    monkeypatch.setattr("sys.argv", ["arch_latency.py", str(tiny_run), str(other)])
    with pytest.raises(SystemExit) as e:
        bench.main()
    assert e.value.code == 2 and f"two runs would share a row's name ({tiny_run.name})" in capsys.readouterr().err


def test_scale_cv_does_not_tell_to_remove_a_fold_it_may_not_read() -> None:
    """scale_cv.py's refusal of a fold run left in WORK says to remove its folder where it is another run's or
    damaged, not where its last.pt may not be read (a whole fold lost to a file's permissions)."""
    from wbc.errors import CheckpointError, CheckpointNotPermitted

    mod = load("scale_cv")
    said = str(mod.not_reusable(CheckpointNotPermitted("w/base/fold0/last.pt: cannot be read (PermissionError: denied)")))
    assert said == "w/base/fold0/last.pt: cannot be read (PermissionError: denied)"
    other = CheckpointError("w/base/fold0: not the run asked for: it differs in epochs (1 there, 2 asked)")
    assert str(mod.not_reusable(other)).endswith("or by another recipe; choose another --work, or remove that folder")


def test_drawn_marks_finds_each_colour_sought_and_marks_no_data_set_file(tmp_path, capsys) -> None:
    """benchmarks/drawn_marks.py on a one-cell TEST: an arrow of each colour the screening seeks is found, 2 and 4 px,
    PNG and JPEG; blue and black are not; the data set's files read as unmarked, each family's highest score below
    its margin, which the last row names."""
    from wbc.photo_checks import MARK_FAMILIES, MARK_MARGINS

    bench = load("drawn_marks")
    two_file_data_set(tmp_path)
    assert bench.main(["--data", str(tmp_path), "--every", "1", "--shifts-every", "1", "--marks-every", "1"]) == 0
    rows = {r.split("|")[1].strip(): [c.strip() for c in r.split("|")[2:-1]]
            for r in capsys.readouterr().out.splitlines() if r.startswith("| ") and "---" not in r}
    for colour in ("red", "yellow", "green", "orange", "cyan", "magenta"):
        cells = rows[f"{colour} {bench.COLOURS[colour]}"]
        assert len(cells) == 4 and all(c.startswith("1 / 1 (0), ") for c in cells), (colour, cells)
        margin = MARK_MARGINS[MARK_FAMILIES.index(bench.FAMILY[colour])]  # the colour's own family's
        assert all(int(c.split(", ")[-1]) >= margin for c in cells), (colour, cells)
    for colour in ("blue", "black"):
        assert all(c.startswith("0 / 1 (") and "," not in c for c in rows[f"{colour} {bench.COLOURS[colour]}"])
    assert rows["as given"][0] == "0 / 2" and rows["saturation x1.6"][0] == "0 / 2"
    highest = [int(v) for v in rows["all of these"][1].split(" (")[0].split(", ")]
    assert all(h < m for h, m in zip(highest, MARK_MARGINS)) and rows["all of these"][0] == "0 / 52"
    assert rows["all of these"][1].endswith(f"(margins {', '.join(map(str, MARK_MARGINS))})")
