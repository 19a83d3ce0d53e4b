from __future__ import annotations

import csv
import json
import math
import os
import re
from dataclasses import replace
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from conftest import FIXTURE_IMAGES  # noqa: E402

from wbc import train as train_mod  # noqa: E402
from wbc.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint  # noqa: E402
from wbc.errors import CheckpointError  # noqa: E402
from wbc.recipe import TrainConfig, check_config, preset, with_epochs  # noqa: E402
from wbc.train import fit  # noqa: E402

TINY = TrainConfig(epochs=2, batch_size=8, val_fraction=0.34, data=str(FIXTURE_IMAGES), threads=1)



def stop_before_last_pt(monkeypatch: pytest.MonkeyPatch) -> None:
    """train's save_checkpoint raising KeyboardInterrupt for last.pt alone: a Ctrl+C (or a kill) after an epoch's
    best.pt and summary.csv, before the last.pt that marks it done."""
    real_save = train_mod.save_checkpoint

    def save(path: Path, ckpt: dict) -> None:
        if path.name == "last.pt":
            raise KeyboardInterrupt
        real_save(path, ckpt)

    monkeypatch.setattr(train_mod, "save_checkpoint", save)

class TestFit:
    def test_run_folder(self, tiny_run: Path) -> None:
        """A run writes config, split, both checkpoints, one summary row per epoch and the curves."""
        for f in ("config.json", "split.json", "best.pt", "last.pt", "summary.csv", "curves.png"):
            assert (tiny_run / f).stat().st_size > 0, f
        rows = list(csv.DictReader((tiny_run / "summary.csv").open()))
        assert [r["epoch"] for r in rows] == ["1", "2"]
        assert {"train_loss", "val_loss", "val_accuracy", "val_macro_f1", "val_cell_accuracy", "lr"} <= set(rows[0])
        cfg = json.loads((tiny_run / "config.json").read_text())
        assert cfg["train"]["epochs"] == 2 and cfg["model"]["preprocess"]["size"] == 96
        split = json.loads((tiny_run / "split.json").read_text())
        assert not set(split["train_cells"]) & set(split["val_cells"])

    def test_refuses_to_overwrite(self, tiny_run: Path) -> None:
        """Training into a folder that holds a run asks for --resume instead of clobbering it."""
        with pytest.raises(CheckpointError, match="--resume"):
            fit(TINY, tiny_run, progress=False)

    def test_refuses_a_users_files(self, tmp_path: Path) -> None:
        """A new run into a folder that holds a user's config.json, summary.csv or curves.png (of no run of ours) is
        refused before the work, the files as they were (they were replaced unsaid); one stopped before its first
        epoch (its config.json, no last.pt) is started again there."""
        from wbc.errors import OutputError

        mine = tmp_path / "mine"
        mine.mkdir()
        theirs = {"config.json": '{"lr": 3}', "summary.csv": "a,b\n", "curves.png": "png"}
        for name, text in theirs.items():
            (mine / name).write_text(text)
        with pytest.raises(OutputError, match=f"^{mine}: holds config.json, summary.csv, curves.png, not of a run by wbc"):
            fit(TINY, mine, progress=False)
        assert {f.name: f.read_text() for f in mine.iterdir()} == theirs
        stopped = tmp_path / "stopped"
        stopped.mkdir()
        (stopped / "config.json").write_text(json.dumps({"train": {}, "model": {}}))
        (stopped / "split.json").write_text("{}")
        fit(replace(TINY, epochs=1), stopped, progress=False)
        assert (stopped / "last.pt").is_file()

    def test_a_finished_run_without_last_pt_is_not_replaced(self, tiny_run: Path, tmp_path: Path) -> None:
        """A finished run whose last.pt was deleted (only --resume needs it) keeps its model: a new run there is
        refused before the work (it was taken for one stopped before its first epoch, and best.pt replaced)."""
        import shutil

        from wbc.errors import CheckpointError

        done = tmp_path / "done"
        shutil.copytree(tiny_run, done)
        (done / "last.pt").unlink()
        before = {f.name: f.read_bytes() for f in done.iterdir()}
        with pytest.raises(CheckpointError, match=f"^{done}: already holds a trained run \\(best.pt, summary.csv; its "
                                                  "last.pt, which --resume needs, is gone\\)"):
            fit(replace(TINY, epochs=1, seed=3), done, progress=False)
        assert {f.name: f.read_bytes() for f in done.iterdir()} == before

    @pytest.mark.parametrize("low_res", [False, True])
    def test_a_run_stopped_while_its_first_epoch_is_saved_starts_again(
            self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, low_res: bool,
            capsys: pytest.CaptureFixture[str]) -> None:
        """Ctrl+C (or a kill) after the first epoch's best.pt and summary.csv, before its last.pt: `wbc train` said
        "start it again", and a new start there was refused as a finished run's. It starts again, saying so (a new
        run into a new folder says nothing of it); a finished run of one epoch without its last.pt is still refused."""
        from wbc.errors import CheckpointError

        real_save = train_mod.save_checkpoint
        cfg = replace(TINY, low_res_size=48, low_res_epochs=1) if low_res else TINY
        stop_before_last_pt(monkeypatch)
        with pytest.raises(KeyboardInterrupt):
            fit(cfg, tmp_path / "r", progress=False)
        assert (tmp_path / "r" / "summary.csv").is_file() and not (tmp_path / "r" / "last.pt").exists()
        assert (tmp_path / "r" / "best.pt").is_file() != low_res  # a low-resolution epoch is never best
        assert "stopped while its first epoch was saved" not in capsys.readouterr().err
        monkeypatch.setattr(train_mod, "save_checkpoint", real_save)
        fit(cfg, tmp_path / "r", progress=False)
        assert (f"wbc: note: {tmp_path / 'r'}: its run was stopped while its first epoch was saved (no last.pt to "
                "resume from): starting it again") in capsys.readouterr().err
        assert load_checkpoint(tmp_path / "r" / "last.pt")["epoch"] == 1
        if low_res:
            return
        one = fit(replace(TINY, epochs=1), tmp_path / "one", progress=False)
        (one / "last.pt").unlink()
        with pytest.raises(CheckpointError, match="already holds a trained run"):
            fit(replace(TINY, epochs=1), one, progress=False)

    @pytest.mark.parametrize("case", ["no summary, best.pt of a later epoch", "summary.csv unreadable",
                                      "one row, best.pt damaged"])
    def test_a_run_without_last_pt_not_surely_stopped_in_its_first_epoch_is_kept(self, tiny_run: Path, tmp_path: Path,
                                                                                 case: str) -> None:
        """Without last.pt, a folder is started again (its best.pt removed) only where it surely holds no more than a
        first epoch: one whose best.pt is of a later epoch, or whose summary.csv or best.pt cannot be read, is refused
        and left as it was."""
        import shutil

        done = tmp_path / "done"
        shutil.copytree(tiny_run, done)
        (done / "last.pt").unlink()
        if case == "no summary, best.pt of a later epoch":
            (done / "summary.csv").unlink()
            save_checkpoint(done / "best.pt", {**load_checkpoint(tiny_run / "last.pt"), "epoch": 1, "stopped": False})
        elif case == "summary.csv unreadable":
            (done / "summary.csv").write_bytes(b"\xff\xfe\x00 not text")
        else:
            (done / "summary.csv").write_text("".join((tiny_run / "summary.csv").read_text().splitlines(True)[:2]))
            (done / "best.pt").write_bytes((tiny_run / "best.pt").read_bytes()[:1000])
        before = {f.name: f.read_bytes() for f in done.iterdir()}
        with pytest.raises(CheckpointError, match="already holds a trained run"):
            fit(replace(TINY, epochs=1, seed=3), done, progress=False)
        assert {f.name: f.read_bytes() for f in done.iterdir()} == before

    def test_a_run_stopped_between_its_first_best_pt_and_summary_starts_again(self, tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
        """Stopped after the first epoch's best.pt, before its summary.csv (no summary yet): started again."""
        real = train_mod._write_summary

        def stopped(*a: object) -> None:
            raise KeyboardInterrupt

        monkeypatch.setattr(train_mod, "_write_summary", stopped)
        with pytest.raises(KeyboardInterrupt):
            fit(TINY, tmp_path / "r", progress=False)
        assert (tmp_path / "r" / "best.pt").is_file() and not (tmp_path / "r" / "summary.csv").exists()
        monkeypatch.setattr(train_mod, "_write_summary", real)
        fit(TINY, tmp_path / "r", progress=False)
        assert load_checkpoint(tmp_path / "r" / "last.pt")["epoch"] == 1

    def test_a_run_started_again_leaves_no_best_pt_of_the_stopped_one(self, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
        """A run stopped while its first epoch was saved (best.pt, no last.pt), started again with a first epoch at
        low resolution (never best): the stopped run's best.pt went on beside the new run's last.pt, and `wbc export`
        would take it for the new run's model."""
        stop_before_last_pt(monkeypatch)
        with pytest.raises(KeyboardInterrupt):
            fit(TINY, tmp_path / "r", progress=False)
        assert (tmp_path / "r" / "best.pt").is_file()
        with pytest.raises(KeyboardInterrupt):  # started again, stopped once more as its low-resolution epoch is saved
            fit(replace(TINY, low_res_size=48, low_res_epochs=1), tmp_path / "r", progress=False)
        assert not (tmp_path / "r" / "best.pt").exists()

    def test_a_damaged_last_pt_or_split_json_says_how_to_go_on(self, tiny_run: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
        """--resume of a run whose last.pt is cut short, or whose split.json is, names the file and says to start
        again in another --out ("start it again" there was refused), in one line, before any image is decoded."""
        import shutil

        def no_decoding(*a, **k):  # noqa: ANN002, ANN003
            raise AssertionError("decoded before the damage was found")

        monkeypatch.setattr(train_mod, "load_prepared", no_decoding)
        run = tmp_path / "run"
        shutil.copytree(tiny_run, run)
        (run / "last.pt").write_bytes((tiny_run / "last.pt").read_bytes()[:1000])
        with pytest.raises(CheckpointError) as e:
            fit(TINY, run, resume=True, progress=False)
        assert re.fullmatch(f"{re.escape(str(run / 'last.pt'))}: not a readable checkpoint, damaged or cut short \\(RuntimeError: [^\\n]{{20,120}}"
                            "\\); it cannot be resumed from: start the run again in another --out, or remove the folder "
                            "first \\(its best.pt may still be exported\\)", str(e.value)), str(e.value)
        (run / "best.pt").unlink()  # stopped among its low-resolution epochs: no best.pt to speak of
        with pytest.raises(CheckpointError) as e:
            fit(TINY, run, resume=True, progress=False)
        assert str(e.value).endswith("; it cannot be resumed from: start the run again in another --out, or remove "
                                     "the folder first"), str(e.value)
        save_checkpoint(run / "last.pt", {**load_checkpoint(tiny_run / "last.pt"), "epoch": 0, "stopped": False})
        (run / "split.json").write_text('{"train_cells": [')
        with pytest.raises(CheckpointError, match=f"^{re.escape(str(run))}: split.json, the cells the run trained on, "
                                                  "is missing or damaged; it cannot be resumed safely: start the run "
                                                  "again in another --out"):
            fit(TINY, run, resume=True, progress=False)

    def test_a_last_pt_not_allowed_to_be_read_is_not_a_dead_end(self, tiny_run: Path, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
        """--resume of a run whose last.pt the user may not read (another user's, mode 600) says it cannot be read,
        with why: not to start again elsewhere "or remove the folder first", which lost a whole run to a permission."""
        import shutil

        import wbc.checkpoint

        run = tmp_path / "run"
        shutil.copytree(tiny_run, run)
        real = wbc.checkpoint.torch.load

        def refused(path: Path, **k: object) -> object:
            if Path(path).name == "last.pt":
                raise PermissionError(13, "Permission denied", str(path))
            return real(path, **k)

        monkeypatch.setattr(wbc.checkpoint.torch, "load", refused)
        with pytest.raises(CheckpointError) as e:
            fit(TINY, run, resume=True, progress=False)
        assert str(e.value) == (f"{run / 'last.pt'}: cannot be read (PermissionError: [Errno 13] Permission denied: "
                                f"'{run / 'last.pt'}')"), str(e.value)
        assert (run / "last.pt").read_bytes() == (tiny_run / "last.pt").read_bytes()
        # torch's reader on a file cut short ("[Errno 22] Invalid argument"): damaged, and the way on said

        def cut_short(path: Path, **k: object) -> None:
            raise OSError(22, "Invalid argument")

        monkeypatch.setattr(wbc.checkpoint.torch, "load", cut_short)
        with pytest.raises(CheckpointError, match="damaged or cut short .*; it cannot be resumed from: start the run "
                                                  "again in another --out"):
            fit(TINY, run, resume=True, progress=False)

    def test_finished_run_resumes_to_nothing(self, tiny_run: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
        """Resuming a finished run trains no more epochs and leaves its files as they were; it returns before
        TRAIN is decoded (it decoded the whole of TRAIN first): its data folder may be gone."""
        before = {p.name: p.read_bytes() for p in tiny_run.iterdir()}
        assert fit(replace(TINY, threads=2, data=str(tmp_path / "gone")), tiny_run, resume=True,
                   progress=False) == tiny_run
        assert "this run already finished at epoch 2" in capsys.readouterr().out
        assert {p.name: p.read_bytes() for p in tiny_run.iterdir()} == before

    def test_a_last_pt_without_its_optimizer_is_named_on_resume(self, tiny_run: Path, tmp_path: Path) -> None:
        """A last.pt without the optimizer's state (edited, or cut down to save space) gave a KeyError traceback."""
        import shutil

        import torch

        run = tmp_path / "run"
        shutil.copytree(tiny_run, run)
        state = torch.load(run / "last.pt", map_location="cpu", weights_only=False)
        del state["optimizer"]
        state["stopped"] = False
        torch.save(state, run / "last.pt")
        with pytest.raises(CheckpointError, match=f"^{re.escape(str(run / 'last.pt'))}: a damaged checkpoint: it "
                                                  "cannot be resumed from \\(KeyError: 'optimizer'\\); train it "
                                                  "again with another --out"):
            fit(TINY, run, resume=True, progress=False)
        # A setting this version does not know (a later version's run) is named on --resume alone: export and
        # evaluate read the checkpoint as before.
        state = torch.load(tiny_run / "last.pt", map_location="cpu", weights_only=False)
        state["train_config"]["bogus"] = 1
        torch.save({**state, "stopped": False}, run / "last.pt")
        load_checkpoint(run / "last.pt")
        with pytest.raises(CheckpointError, match="its settings are not this version's .*bogus.*resume it with the "
                                                  "version that started it"):
            fit(TINY, run, resume=True, progress=False)

    def test_all_cells_never_takes_a_low_resolution_epoch(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """With no cells held out the model is the last epoch's: an epoch at low resolution is neither
        marked best nor written as best.pt."""
        run = fit(replace(TINY, fold=None, low_res_size=48, low_res_epochs=1), tmp_path / "all", progress=False)
        lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("epoch")]
        assert len(lines) == 2 and "(48 px)" in lines[0] and not lines[0].endswith("*") and lines[1].endswith("*")
        assert load_checkpoint(run / "best.pt")["epoch"] == 1

    def test_resume_on_other_data_is_refused(self, tiny_run: Path, data_copy: Path, tmp_path: Path) -> None:
        """--data may move, but a resume that would read other cells or files than the run started on is
        refused by name (it trained on 55 files instead of 1,634, unsaid); the same data, copied, resumes."""
        import shutil

        from wbc.errors import DataError

        shutil.copytree(tiny_run, tmp_path / "run")
        tiny_run = tmp_path / "run"

        def resume() -> None:
            """Resumed as stopped in its last epoch (a finished run reads no data); each resume finishes it."""
            state = load_checkpoint(tiny_run / "last.pt")
            save_checkpoint(tiny_run / "last.pt", {**state, "stopped": False})
            fit(replace(TINY, data=str(data_copy)), tiny_run, resume=True, progress=False)

        resume()  # moved: the same files
        split = json.loads((tiny_run / "split.json").read_text())
        assert split["train_files"] + split["val_files"] == len(list((data_copy / "TRAIN").rglob("*.jpeg")))
        # A run made before split.json counted files resumes on the same cells.
        (tiny_run / "split.json").write_text(json.dumps({k: split[k] for k in ("train_cells", "val_cells")}))
        resume()
        (tiny_run / "split.json").write_text(json.dumps(split))
        # The same cells from another count of files.
        (tiny_run / "split.json").write_text(json.dumps({**split, "train_files": split["train_files"] + 1}))
        with pytest.raises(DataError, match=r"--resume: the data at .* gives \d+ training and \d+ validation files of "
                                            r"the run's cells, but it started on \d+ and \d+ .*restore them"):
            resume()
        (tiny_run / "split.json").write_text(json.dumps(split))
        # A run started before wbc 0.21 kept a field labelled twice on two sides: where only linked cells
        # went otherwise, it resumes on its own split; a cell moved that is not linked is refused.
        import wbc.run_folder

        v, t = split["val_cells"][0], split["train_cells"][0]
        older = {"train_cells": sorted([*split["train_cells"], v]), "val_cells": split["val_cells"][1:]}
        (tiny_run / "split.json").write_text(json.dumps(older))
        with pytest.raises(DataError, match="1 moved between training and validation"):
            resume()
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(wbc.run_folder, "read_linked", lambda: {v: t})
            resume()
        (tiny_run / "split.json").write_text(json.dumps(split))
        # A file gone: the cells split otherwise.
        next((data_copy / "TRAIN" / "MONOCYTE").glob("*.jpeg")).unlink()
        with pytest.raises(DataError, match=r"validation cells, other than the \d+ and \d+ the run started on "
                                            r"\(split\.json; \d+ (missing|new|moved).*\).*left out as unusable"):
            resume()
        # Data with a cell fewer, too few to split: the data named as the cause, not "a larger --limit-cells"
        from wbc.data import list_split

        gone = next(s for s in list_split(data_copy, "TRAIN") if s.label == 3).cell
        for smp in list_split(data_copy, "TRAIN"):
            if smp.cell == gone:
                smp.path.unlink()
        with pytest.raises(DataError, match=r"--resume: the data at .* gives 11 cells, other than the 12 the run "
                                            r"started on \(split.json\), and no split of them can be made"):
            resume()

    @pytest.mark.parametrize("ema", [0.0, 0.9])
    def test_resume_after_interruption_matches(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ema: float) -> None:
        """Killed during epoch 2, then resumed: the same weights as an uninterrupted run (seeded), with
        or without a weight average (whose own state must come back too)."""
        cfg = replace(TINY, ema=ema)
        straight = fit(cfg, tmp_path / "straight", progress=False)
        real = train_mod.train_one_epoch
        calls = {"n": 0}

        def dies_in_second_epoch(*a, **k):  # noqa: ANN002, ANN003
            calls["n"] += 1
            if calls["n"] == 2:
                raise KeyboardInterrupt
            return real(*a, **k)

        monkeypatch.setattr(train_mod, "train_one_epoch", dies_in_second_epoch)
        with pytest.raises(KeyboardInterrupt):
            fit(cfg, tmp_path / "broken", progress=False)
        assert load_checkpoint(tmp_path / "broken" / "last.pt")["epoch"] == 0
        monkeypatch.setattr(train_mod, "train_one_epoch", real)
        fit(replace(cfg, skip_bad=True), tmp_path / "broken", resume=True, progress=False)  # a machine setting changed
        # config.json says how the run went on: the stored recipe, the machine settings of the resume.
        saved = json.loads((tmp_path / "broken" / "config.json").read_text())["train"]
        assert saved == {**json.loads((straight / "config.json").read_text())["train"], "skip_bad": True}
        a = load_checkpoint(straight / "last.pt")
        b = load_checkpoint(tmp_path / "broken" / "last.pt")
        assert b["epoch"] == 1 and len(b["history"]) == 2
        for k, v in a["state_dict"].items():
            assert torch.equal(v, b["state_dict"][k]), k

    def test_interrupted_checkpoint_write_keeps_the_last_one(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """Ctrl-C while epoch 2's last.pt is being put in place: the file left is epoch 1's, whole, with no
        temporary file beside it, and the run resumes from it."""
        import wbc.io

        real, moves = os.replace, []

        def interrupted(src: str, dst: str | Path) -> None:
            if Path(dst).name == "last.pt":
                moves.append(dst)
                if len(moves) == 2:
                    raise KeyboardInterrupt
            real(src, dst)

        monkeypatch.setattr(wbc.io.os, "replace", interrupted)
        with pytest.raises(KeyboardInterrupt):
            fit(TINY, tmp_path / "r", progress=False)
        monkeypatch.setattr(wbc.io.os, "replace", real)
        assert load_checkpoint(tmp_path / "r" / "last.pt")["epoch"] == 0
        assert not [f.name for f in (tmp_path / "r").iterdir() if f.name.endswith(".tmp")]
        fit(TINY, tmp_path / "r", resume=True, progress=False)
        assert load_checkpoint(tmp_path / "r" / "last.pt")["epoch"] == 1

    def test_a_killed_writes_temporary_files_go_with_the_next_start(self, tiny_run: Path, tmp_path: Path) -> None:
        """A kill while a checkpoint was written leaves its hidden temporary file (no handler runs); the next `wbc
        train` there, holding the folder alone, removes it (they were never removed); files of other names stay."""
        import shutil

        run = tmp_path / "run"
        shutil.copytree(tiny_run, run)
        dead = [run / ".last.pt.k2j4x9.tmp", run / ".best.pt.a1b2c3.tmp", run / ".summary.csv.zz.tmp"]
        mine = run / ".notes.txt.q.tmp"
        for f in (*dead, mine):
            f.write_bytes(b"half")
        stuck = run / ".best.pt.qq.tmp"  # one that cannot be removed (a folder here) is passed over, not a traceback
        stuck.mkdir()
        (stuck / "x").write_bytes(b"")
        fit(TINY, run, resume=True, progress=False)  # finished: trains nothing, and still tidies
        assert [f.exists() for f in dead] == [False] * 3 and mine.exists() and stuck.is_dir()

    def test_curves_mark_the_epoch_best_pt_holds(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """curves.png is drawn after every epoch with the epoch best.pt holds marked (here the second of
        three, by the validation figures given), and a resumed run finds it again in its history."""
        import wbc.report

        real_plot, real_val, marked = wbc.report.plot_curves, train_mod._val_metrics, []
        scores: list[float] = []

        def plot(history: list, path: Path, best_epoch: int | None = None, full_px: int | None = None) -> None:
            marked.append(best_epoch)
            real_plot(history, path, best_epoch, full_px)

        def val(*a, **k) -> dict:  # noqa: ANN002, ANN003
            return {**real_val(*a, **k), "val_macro_f1": scores.pop(0)}

        monkeypatch.setattr(wbc.report, "plot_curves", plot)
        monkeypatch.setattr(train_mod, "_val_metrics", val)
        scores[:] = [0.1, 0.3, 0.3]  # the third ties the second: no improvement, best.pt keeps the second
        run = fit(replace(TINY, epochs=3, patience=3), tmp_path / "r", progress=False)
        assert marked == [1, 2, 2] and load_checkpoint(run / "best.pt")["epoch"] + 1 == 2
        state = load_checkpoint(run / "last.pt")  # as if stopped after the second epoch, then resumed
        save_checkpoint(run / "last.pt", {**state, "epoch": 1, "stopped": False, "history": state["history"][:2]})
        marked.clear()
        scores[:] = [0.2]
        fit(TINY, run, resume=True, progress=False)
        assert marked == [2]

    def test_a_run_stopped_as_its_last_epoch_is_saved_still_gets_its_summary(self, tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
        """Stopped (Ctrl+C) while the last epoch's last.pt is written: summary.csv already holds that epoch, and the
        resume runs it again and finishes (last.pt was written first, and its resume said "already finished"
        with the last row never written)."""
        real_save = train_mod.save_checkpoint

        def save(path: Path, ckpt: dict) -> None:
            if path.name == "last.pt" and ckpt["stopped"]:
                raise KeyboardInterrupt
            real_save(path, ckpt)

        monkeypatch.setattr(train_mod, "save_checkpoint", save)
        with pytest.raises(KeyboardInterrupt):
            fit(TINY, tmp_path / "r", progress=False)
        rows = (tmp_path / "r" / "summary.csv").read_text().splitlines()
        assert len(rows) == 1 + TINY.epochs
        monkeypatch.setattr(train_mod, "save_checkpoint", real_save)
        fit(TINY, tmp_path / "r", resume=True, progress=False)
        assert load_checkpoint(tmp_path / "r" / "last.pt")["stopped"]
        assert len((tmp_path / "r" / "summary.csv").read_text().splitlines()) == 1 + TINY.epochs

    def test_early_stop_on_the_validation_loss(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
        """With monitor val_loss, a lower loss is better: best.pt holds the epoch of the lowest, and the run
        stops once `patience` epochs have not lowered it (an equal loss does not), saying why."""
        real_val, losses = train_mod._val_metrics, [1.0, 0.5, 0.5, 0.9, 0.1, 0.1]  # a tie is no improvement
        monkeypatch.setattr(train_mod, "_val_metrics", lambda *a, **k: {**real_val(*a, **k), "val_loss": losses.pop(0)})
        run = fit(replace(TINY, epochs=6, patience=2, monitor="val_loss"), tmp_path / "r", progress=False)
        last = load_checkpoint(run / "last.pt")
        assert len(last["history"]) == 4 and last["stopped"] and last["best"] == 0.5
        assert load_checkpoint(run / "best.pt")["epoch"] + 1 == 2
        assert "early stop: val_loss did not improve for 2 epochs" in capsys.readouterr().out

    def test_weight_average_is_the_model(self, tmp_path: Path) -> None:
        """With --ema the saved model is the average: its weights differ from the ones trained, and
        validation scored it (what best.pt holds is what predicts)."""
        run = fit(replace(TINY, ema=0.9), tmp_path / "ema", progress=False)
        state = load_checkpoint(run / "last.pt")
        trained, served = state["training_state_dict"], state["state_dict"]
        assert set(trained) == set(served)
        assert any(not torch.equal(trained[k], served[k]) for k in served if served[k].is_floating_point())
        net, spec = model_from_checkpoint(state)  # the average loads as a plain network
        assert sum(p.numel() for p in net.parameters()) > 0
        with pytest.raises(ValueError, match="ema decay"):
            fit(replace(TINY, ema=1.0), tmp_path / "bad", progress=False)

    def test_distillation_from_a_teacher(self, tiny_run: Path, tmp_path: Path) -> None:
        """A student learns from a teacher that held out the same cells; the teachers' soft targets are
        probabilities that do not depend on the crops' orientation, and they change what is learnt."""
        from wbc.cache import load_arrays
        from wbc.data import list_split
        from wbc.train import teacher_probs, to_tensor

        val = set(json.loads((tiny_run / "split.json").read_text())["val_cells"])
        _, spec = model_from_checkpoint(load_checkpoint(tiny_run / "best.pt"))
        x, _ = load_arrays(list_split(FIXTURE_IMAGES, "TRAIN")[:6], spec, progress=False)
        xt = to_tensor(x)
        p = teacher_probs((str(tiny_run),), xt, val)
        assert p.shape == (6, 4) and torch.allclose(p.sum(1), torch.ones(6), atol=1e-5)
        assert torch.allclose(teacher_probs((str(tiny_run),), torch.rot90(xt, 1, dims=(2, 3)), val), p, atol=1e-5)

        plain = fit(TINY, tmp_path / "plain", progress=False)
        student = fit(replace(TINY, teachers=(str(tiny_run),), distill=1.0), tmp_path / "student", progress=False)
        assert json.loads((student / "config.json").read_text())["train"]["teachers"] == [str(tiny_run)]
        a, b = load_checkpoint(plain / "last.pt")["state_dict"], load_checkpoint(student / "last.pt")["state_dict"]
        assert any(not torch.equal(a[k], b[k]) for k in a)

    def test_mixup(self, tiny_run: Path, tmp_path: Path) -> None:
        """Mixup pairs every image with another of the batch at a weight of at least one half, is
        seeded, and changes what is learnt."""
        from wbc.train import _mix_pairs

        draws = [_mix_pairs(6, 0.4, torch.Generator().manual_seed(s)) for s in range(20)]
        assert all(0.5 <= lam <= 1 and sorted(p.tolist()) == list(range(6)) for lam, p in draws)
        assert len({round(lam, 6) for lam, _ in draws}) > 10
        mixed = fit(replace(TINY, mixup=0.4), tmp_path / "mixed", progress=False)
        a, b = load_checkpoint(tiny_run / "last.pt")["state_dict"], load_checkpoint(mixed / "last.pt")["state_dict"]
        assert any(not torch.equal(a[k], b[k]) for k in a)

    def test_pair_smoothing(self, tiny_run: Path, tmp_path: Path) -> None:
        """Pair smoothing moves its share between eosinophil and neutrophil targets only, keeps the
        class-weighted mean of the hard-label loss, and changes what is learnt."""
        from wbc.info import CLASSES
        from wbc.train import EOS as eos
        from wbc.train import NEUT as neu
        from wbc.train import _loss, smoothed_targets

        lym = CLASSES.index("LYMPHOCYTE")
        t = smoothed_targets(torch.tensor([eos, lym, neu]), 0.2, 0.1)
        want = torch.full((3, 4), 0.05)
        want[0, eos], want[0, neu] = 0.75, 0.15
        want[1, lym] = 0.85
        want[2, neu], want[2, eos] = 0.75, 0.15
        assert torch.allclose(t, want)
        logits, y = torch.randn(5, 4), torch.tensor([0, 1, 2, 3, 0])
        w, idx = torch.tensor([1.0, 2.0, 0.5, 1.5]), torch.arange(5)
        hard = _loss(logits, idx, y, None, w, replace(TINY, label_smoothing=0.2))
        paired = _loss(logits, idx, y, None, w, replace(TINY, label_smoothing=0.2, pair_smoothing=1e-9))
        assert torch.allclose(hard, paired, atol=1e-6)
        smoothed = fit(replace(TINY, pair_smoothing=0.1), tmp_path / "paired", progress=False)
        a, b = load_checkpoint(tiny_run / "last.pt")["state_dict"], load_checkpoint(smoothed / "last.pt")["state_dict"]
        assert any(not torch.equal(a[k], b[k]) for k in a)

    def test_teacher_that_saw_validation_cells_is_refused(self, tiny_run: Path, tmp_path: Path) -> None:
        """A teacher trained on the student's validation cells would leak them: refused by name."""
        with pytest.raises(CheckpointError, match="other validation cells"):
            fit(replace(TINY, teachers=(str(tiny_run),), split_seed=1), tmp_path / "s", progress=False)
        with pytest.raises(CheckpointError, match="nowhere: no such run folder"):
            fit(replace(TINY, teachers=(str(tmp_path / "nowhere"),)), tmp_path / "t", progress=False)

    def test_teacher_that_reads_other_crops_is_refused(self, tiny_run: Path, tmp_path: Path) -> None:
        """A teacher is given the student's crops: one that reads other crops (here 96 px, the student 64 px) would
        teach from inputs it never saw (a whole-field teacher crashed on them); refused by name before training."""
        from wbc.imaging import PreprocessSpec
        from wbc.model import WbcNetConfig

        student = WbcNetConfig(preprocess=PreprocessSpec(size=64))
        with pytest.raises(CheckpointError, match=f"^{tiny_run}: this teacher reads 160 px crops at 96 px, the student "
                                                  "160 px crops at 64 px; train the teacher with the student's"):
            fit(replace(TINY, teachers=(str(tiny_run),)), tmp_path / "s", progress=False, model_cfg=student)
        assert not (tmp_path / "s" / "best.pt").exists()

    def test_split_seed_fixes_the_split_alone(self, tmp_path: Path) -> None:
        """Runs with other seeds but one --split-seed hold out the same cells (ensemble teachers)."""
        a = fit(replace(TINY, epochs=1, seed=1, split_seed=0), tmp_path / "a", progress=False)
        b = fit(replace(TINY, epochs=1, seed=2, split_seed=0), tmp_path / "b", progress=False)
        assert (a / "split.json").read_text() == (b / "split.json").read_text()

    def test_fold_holds_out_another_fold(self, tmp_path: Path, tiny_run: Path) -> None:
        """--fold 1 holds out cells that fold 0 (the default run) trained on, and records the fold."""
        run = fit(replace(TINY, epochs=1, fold=1), tmp_path / "f1", progress=False)
        f0, f1 = (set(json.loads((r / "split.json").read_text())["val_cells"]) for r in (tiny_run, run))
        assert f1 and not f0 & f1
        assert json.loads((run / "config.json").read_text())["train"]["fold"] == 1

    def test_seed_preset(self) -> None:
        """The replica trains as the reference did: Adam at 1e-4, up to 50 epochs, class weights."""
        cfg = preset("seed")
        assert (cfg.optimizer, cfg.lr, cfg.epochs, cfg.class_weights, cfg.augment) == ("adam", 1e-4, 50, True, "basic")
        assert cfg.mixup == 0.0

    def test_wbcnet_preset(self) -> None:
        """wbcnet's default recipe is the cross-validated one (e36): 80 epochs of AdamW, the first 64 at
        64 px, robust augmentation with cutout, mixup 0.4, label smoothing 0.2."""
        cfg = preset("wbcnet")
        assert (cfg.optimizer, cfg.epochs, cfg.augment, cfg.mixup, cfg.label_smoothing) == (
            "adamw", 80, "robust-erase", 0.4, 0.2)
        assert (cfg.low_res_size, cfg.low_res_epochs, cfg.low_res_antialias) == (64, 64, False)

    def test_with_epochs_keeps_the_share_of_low_resolution(self) -> None:
        """A shorter or longer schedule keeps 4/5 of its epochs at low resolution, the last always at
        full size; a one-epoch run and the seed replica have none."""
        cfg = preset("wbcnet")
        assert with_epochs(cfg, 80) == cfg
        assert [(with_epochs(cfg, n).low_res_epochs, with_epochs(cfg, n).low_res_size) for n in (100, 10, 3, 2)] == [
            (80, 64), (8, 64), (2, 64), (1, 64)]
        assert with_epochs(cfg, 10).epochs == 10
        one = with_epochs(replace(cfg, low_res_antialias=True), 1)
        assert (one.epochs, one.low_res_size, one.low_res_epochs, one.low_res_antialias) == (1, 0, 0, False)
        assert with_epochs(preset("seed"), 5) == replace(preset("seed"), epochs=5)
        for n in (1, 2, 3, 10, 100):
            check_config(with_epochs(cfg, n))  # every one of them is a valid run

    def test_seed_model_trains_and_exports(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """The replica goes through the same pipeline (one epoch on the fixtures). `wbc export` gives it
        one view, saying why: its 120x160 input cannot be rotated by 90 degrees; a card asking for
        rotations of such an input is refused when it loads."""
        from wbc.cli import main
        from wbc.errors import ModelFileError
        from wbc.predict import Predictor

        cfg = replace(preset("seed"), epochs=1, batch_size=8, val_fraction=0.34, data=str(FIXTURE_IMAGES), threads=1)
        fit(cfg, tmp_path / "seed", progress=False)
        assert load_checkpoint(tmp_path / "seed" / "best.pt")["model_name"] == "seed"
        out = tmp_path / "export"
        assert main(["export", str(tmp_path / "seed"), "--out", str(out), "--data", str(FIXTURE_IMAGES)]) == 0
        assert "input (120x160 px) is not square, so it is not rotated" in capsys.readouterr().out
        card = json.loads((out / "model.json").read_text())
        assert card["tta_views"] == 1 and card["calibration"]["fitted_on_views"] == 1
        assert Predictor(out).tta_views == 1
        (out / "model.json").write_text(json.dumps({**card, "tta_views": 4}))
        with pytest.raises(ModelFileError, match="tta_views is 4, but the input .120x160 px. is not square"):
            Predictor(out)


class TestCheckpoint:
    def test_missing(self, tmp_path: Path) -> None:
        """A missing checkpoint is named."""
        with pytest.raises(CheckpointError, match="no such checkpoint"):
            load_checkpoint(tmp_path / "x.pt")

    def test_corrupt(self, tmp_path: Path) -> None:
        """A damaged checkpoint is reported, not a pickle traceback."""
        f = tmp_path / "bad.pt"
        f.write_bytes(b"garbage")
        with pytest.raises(CheckpointError, match="not a readable checkpoint"):
            load_checkpoint(f)

    def test_a_checkpoint_not_allowed_to_be_read_is_not_called_damaged(self, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
        """A checkpoint the user may not read (another user's, mode 600) says so: it was said to be "damaged or cut
        short", which sends a user to train again rather than to its permissions; the path it quotes is whole."""
        import wbc.checkpoint

        f = tmp_path / "Dr. A. Smith" / "theirs.pt"  # a ". " in its path ends no sentence of the message
        f.parent.mkdir()
        f.write_bytes(b"x")

        def refused(path: Path, **k: object) -> None:
            raise PermissionError(13, "Permission denied", str(path))

        monkeypatch.setattr(wbc.checkpoint.torch, "load", refused)
        with pytest.raises(CheckpointError) as e:
            load_checkpoint(f)
        assert str(e.value) == f"{f}: cannot be read (PermissionError: [Errno 13] Permission denied: '{f}')"

    def test_a_pickle_that_would_run_code_is_not_built(self, tiny_run: Path, tmp_path: Path,
                                                       recwarn: pytest.WarningsRecorder) -> None:
        """A .pt holding an object whose unpickling runs code (`wbc evaluate --model someone_elses.pt`) was built,
        its code run: refused unbuilt, naming what it holds; a plain pickle is unreadable, with no stray warning
        line; a checkpoint `fit` wrote loads as it did."""
        import pickle

        import torch

        class Runs:
            def __reduce__(self) -> tuple[object, tuple[str]]:
                return (os.mkdir, (str(tmp_path / "ran"),))

        torch.save({"version": 1, "x": Runs()}, tmp_path / "evil.pt")
        with pytest.raises(CheckpointError, match=r"evil.pt: holds objects other than a wbc checkpoint's tensors and "
                                                  r"settings \(posix.mkdir\); not loaded, since building them could run"):
            load_checkpoint(tmp_path / "evil.pt")
        assert not (tmp_path / "ran").exists()
        (tmp_path / "plain.pt").write_bytes(pickle.dumps({"a": 1}, protocol=4))
        with pytest.raises(CheckpointError, match=r"plain.pt: not a readable checkpoint \(Unsupported operand"):
            load_checkpoint(tmp_path / "plain.pt")
        assert not [str(w.message) for w in recwarn]
        assert load_checkpoint(tiny_run / "best.pt")["model_name"] == "wbcnet"

    @pytest.mark.parametrize("edit,says", [
        (lambda s: s.pop("history"), "a damaged checkpoint: its history is missing, not a list"),
        (lambda s: s.update(model_config="x"), "a damaged checkpoint: its model_config is 'x', not an object"),
        (lambda s: s.update(epoch=True), "a damaged checkpoint: its epoch is True, not a whole number"),
        (lambda s: s["model_config"].update(bogus=1), "its settings are not this version's \\(TypeError: .*bogus"),
    ])
    def test_a_checkpoint_of_this_version_with_fields_wrong_is_named(self, tiny_run: Path, tmp_path: Path,
                                                                     edit, says: str) -> None:  # noqa: ANN001
        """A checkpoint of this version whose fields are missing or of another type (edited, or another tool's)
        is refused by its path when read: evaluate, export and --resume gave KeyError and TypeError tracebacks."""
        import torch

        state = torch.load(tiny_run / "best.pt", map_location="cpu", weights_only=False)
        edit(state)
        torch.save(state, tmp_path / "best.pt")
        with pytest.raises(CheckpointError, match=f"^{re.escape(str(tmp_path / 'best.pt'))}: {says}"):
            load_checkpoint(tmp_path / "best.pt")

    def test_a_checkpoint_of_other_classes_is_refused(self, tiny_run: Path, tmp_path: Path) -> None:
        """A checkpoint trained for the four types in another order (or other types) is refused by its path: loaded,
        every prediction of evaluate and export would be read as another type's."""
        import torch

        state = torch.load(tiny_run / "best.pt", map_location="cpu", weights_only=False)
        state["classes"] = [state["classes"][1], state["classes"][0], *state["classes"][2:]]
        torch.save(state, tmp_path / "best.pt")
        with pytest.raises(CheckpointError, match=f"^{re.escape(str(tmp_path / 'best.pt'))}: trained for classes "
                                                  r"\['LYMPHOCYTE', 'EOSINOPHIL', 'MONOCYTE', 'NEUTROPHIL'\], expected"):
            load_checkpoint(tmp_path / "best.pt")

    @pytest.mark.parametrize("version", [None, 2, "1"])
    def test_a_checkpoint_of_another_version_is_refused(self, tiny_run: Path, tmp_path: Path, version: object) -> None:
        """A checkpoint of another version (a later wbc's, or none recorded) is refused by its path as not this
        version's, rather than read as if its fields meant what this version's do."""
        import torch

        state = torch.load(tiny_run / "best.pt", map_location="cpu", weights_only=False)
        if version is None:
            del state["version"]
        else:
            state["version"] = version
        torch.save(state, tmp_path / "best.pt")
        with pytest.raises(CheckpointError, match=f"^{re.escape(str(tmp_path / 'best.pt'))}: not a wbc checkpoint of "
                                                  "version 1$"):
            load_checkpoint(tmp_path / "best.pt")

    def test_weights_that_do_not_fit_the_network_are_named(self, tiny_run: Path, tmp_path: Path) -> None:
        """Weights of another shape than the network its model_config describes: named, not torch's traceback."""
        import torch

        from wbc.checkpoint import model_from_checkpoint

        state = load_checkpoint(tiny_run / "best.pt")
        name = next(k for k, v in state["state_dict"].items() if v.ndim == 2)
        state["state_dict"][name] = torch.zeros(3, 3)
        with pytest.raises(CheckpointError, match=f"^x.pt: its weights do not fit the network its model_config "
                                                  f"describes, or .*size mismatch for {re.escape(name)}"):
            model_from_checkpoint(state, "x.pt")
        state = load_checkpoint(tiny_run / "best.pt")
        state["model_config"]["widths"] = "x"
        with pytest.raises(CheckpointError, match="^x.pt: its weights do not fit .*or that network cannot be built"):
            model_from_checkpoint(state, "x.pt")

    def test_a_run_folder_reads_as_its_best_pt_in_eval_mode(self, tiny_run: Path, tmp_path: Path) -> None:
        """A run folder given for a checkpoint is its best.pt, the epoch chosen on validation, not its last.pt; the
        network rebuilt from it is in eval mode (BatchNorm's running statistics, no dropout)."""
        run = tmp_path / "run"
        run.mkdir()
        last = load_checkpoint(tiny_run / "last.pt")
        save_checkpoint(run / "last.pt", {**last, "epoch": 5})
        save_checkpoint(run / "best.pt", {**last, "epoch": 3})
        state = load_checkpoint(run)
        assert state["epoch"] == 3
        net, _ = model_from_checkpoint(state)
        assert not any(m.training for m in net.modules())

    def test_a_folder_named_like_a_checkpoint_is_named_as_itself(self, tmp_path: Path) -> None:
        """A folder named last.pt was taken for a run folder: 'last.pt/best.pt: no such checkpoint'."""
        (tmp_path / "last.pt").mkdir()
        with pytest.raises(CheckpointError, match=f"^{re.escape(str(tmp_path / 'last.pt'))}: a folder, not a checkpoint"):
            load_checkpoint(tmp_path / "last.pt")


def test_training_images_without_colour_are_named(data_copy: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """A grayscale photo among a user's training images is named (trained on as it is): wbc predict would
    call such a photo 'cannot judge', and the stain's colours tell the types apart."""
    from PIL import Image

    from wbc.cache import colourless, load_arrays
    from wbc.data import list_split
    from wbc.imaging import PreprocessSpec

    gray = sorted((data_copy / "TRAIN" / "MONOCYTE").glob("*.jpeg"))[0]
    Image.open(gray).convert("L").save(gray, format="JPEG")
    samples = list_split(data_copy, "TRAIN")
    x, kept = load_arrays(samples, PreprocessSpec(), use_cache=False, progress=False)
    assert colourless(x, kept) == [gray]
    import shutil

    # TEST with a copy of a TRAIN image renamed into TRAIN too, and a data set TRAIN file's copied under a new name
    # (neither was named once a renamed copy in its own class joined its file's cell)
    shutil.copytree(data_copy / "TEST_SIMPLE", data_copy / "TEST")
    original, other = sorted((data_copy / "TRAIN" / "EOSINOPHIL").glob("_*.jpeg"))[:2]
    own = data_copy / "TRAIN" / "EOSINOPHIL" / "own.jpeg"
    shutil.copy(original, own)
    shutil.copy(own, data_copy / "TEST" / "EOSINOPHIL" / "again.jpeg")
    shutil.copy(other, data_copy / "TEST" / "EOSINOPHIL" / "renamed.jpeg")
    fit(replace(TINY, epochs=1, data=str(data_copy)), tmp_path / "r", progress=False)
    err = capsys.readouterr().err
    assert "training image(s) have no colour (grayscale)" in err and str(gray) in err
    assert "2 TEST image(s) are byte-for-byte copies of TRAIN images" in err, err
    assert f"again.jpeg (= {original})" in err and f"renamed.jpeg (= {other})" in err, err


def test_training_images_too_small_to_be_screened_are_warned_of(data_copy: Path, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """Training images smaller than the screening's least side (photo_checks.MIN_SIDE_PX) are counted and named in a
    warning, and trained on as they are: `wbc predict` calls such a photo "cannot judge: too small", so a model
    trained on them is not used on photos like them (4x4 px ones trained and exported without a word). The sizes
    come with the decoded images, from the cache too; the fixtures' 320x240 fields are not too small."""
    from PIL import Image

    from wbc.cache import files_too_small, load_prepared
    from wbc.data import list_split
    from wbc.imaging import PreprocessSpec
    from wbc.photo_checks import MIN_SIDE_PX

    fixed = load_prepared(list_split(data_copy, "TRAIN"), PreprocessSpec(), use_cache=False, progress=False)
    assert files_too_small(fixed.samples, fixed.sides) == []
    small = sorted((data_copy / "TRAIN" / "LYMPHOCYTE").glob("*.jpeg"))[:2]
    for f in small:
        Image.open(f).resize((40, 30)).save(f)
    samples = list_split(data_copy, "TRAIN")
    first, again = (load_prepared(samples, PreprocessSpec(), progress=False) for _ in range(2))  # again: the cache's
    assert files_too_small(first.samples, first.sides) == files_too_small(again.samples, again.sides) == small
    assert first.sides.tolist() == again.sides.tolist()
    fit(replace(TINY, epochs=1, data=str(data_copy)), tmp_path / "r", progress=False)
    err = " ".join(capsys.readouterr().err.split())
    assert f"wbc: warning: 2 of the 24 training image(s) are smaller than {MIN_SIDE_PX} px a side" in err
    assert "a model trained on them will not be used on such photos" in err and all(str(f) in err for f in small)


def test_fit_refuses_an_unknown_optimizer_before_any_work(tmp_path: Path) -> None:
    """A TrainConfig built in Python with an optimizer the trainer lacks is refused by name, and
    the run folder is not created (the CLI's choices cannot catch this path)."""
    from wbc.errors import ConfigError

    cfg = replace(preset("wbcnet"), optimizer="rmsprop", data=str(FIXTURE_IMAGES), epochs=1)
    with pytest.raises(ConfigError, match="unknown optimizer 'rmsprop'"):
        fit(cfg, tmp_path / "r", progress=False)
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(("name", "setting"), [("mixup alpha", {"mixup": math.nan}),
                                               ("learning rate", {"lr": math.inf}),
                                               ("label smoothing", {"label_smoothing": math.nan})])
def test_settings_that_are_not_numbers_are_refused(tmp_path: Path, name: str, setting: dict[str, float]) -> None:
    """NaN passed every range check unseen (mixup nan trained without mixup, and wrote NaN into config.json) and
    an infinite learning rate trained to a NaN loss; each is refused by name before any work."""
    from wbc.errors import ConfigError

    with pytest.raises(ConfigError, match=f"^{name} (nan|inf): choose a finite number"):
        fit(replace(TINY, **setting), tmp_path / "r", progress=False)
    assert not (tmp_path / "r").exists()


def test_a_diverged_run_is_stopped_not_saved(tmp_path: Path) -> None:
    """A learning rate so high that the loss is no number stops the run at that epoch with what to do; the
    diverged weights are neither marked best nor saved (they were saved as best.pt, the model to export)."""
    from wbc.errors import ConfigError

    with pytest.raises(ConfigError, match=r"^epoch 1: the training loss is nan \(the run diverged, at learning rate "
                                          r"1e\+30\): start a new run with a lower --lr, in another --out folder \(or remove "):
        fit(replace(TINY, lr=1e30, mixup=0.0), tmp_path / "r", progress=False)
    assert not (tmp_path / "r" / "best.pt").exists() and not (tmp_path / "r" / "last.pt").exists()


@pytest.mark.parametrize(("augment", "mixup"), [("robust", 0.0), ("none", 0.4)])
def test_low_res_epochs_train_on_smaller_inputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, augment: str,
                                                mixup: float) -> None:
    """Progressive resizing: the first --low-res EPOCHS epochs feed the network PX x PX crops (through
    the augmentation's warp, or a plain resize without augmentation), the later ones and validation its
    full input size, also when the run was interrupted in a low-resolution epoch and resumed; a
    low-resolution epoch is never the best one. Without the option every epoch is full size."""
    train = train_mod
    calls: list[set[tuple[int, int]]] = []
    real_epoch, real_build = train.train_one_epoch, train.build_model

    def counting_epoch(*args: object, **kwargs: object) -> float:
        calls.append(set())
        if len(calls) == 2 and die["armed"]:
            raise KeyboardInterrupt
        return real_epoch(*args, **kwargs)

    def hooked_build(*args: object, **kwargs: object) -> torch.nn.Module:
        net = real_build(*args, **kwargs)

        def record(module: torch.nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
            if module.training:  # validation runs in eval mode, always at full size
                calls[-1].add(tuple(inputs[0].shape[2:]))
            else:
                assert tuple(inputs[0].shape[2:]) == (96, 96)

        net.register_forward_pre_hook(record)
        return net

    die = {"armed": True}
    monkeypatch.setattr(train, "train_one_epoch", counting_epoch)
    monkeypatch.setattr(train, "build_model", hooked_build)
    cfg = replace(TINY, epochs=3, low_res_size=48, low_res_epochs=2, augment=augment, mixup=mixup)
    with pytest.raises(KeyboardInterrupt):  # killed in epoch 2, still at low resolution
        fit(cfg, tmp_path / "low", progress=False)
    die["armed"] = False
    fit(cfg, tmp_path / "low", resume=True, progress=False)
    assert calls == [{(48, 48)}, set(), {(48, 48)}, {(96, 96)}]
    saved = json.loads((tmp_path / "low" / "config.json").read_text())["train"]
    assert (saved["low_res_size"], saved["low_res_epochs"]) == (48, 2)
    with open(tmp_path / "low" / "summary.csv") as f:
        assert [r["input_px"] for r in csv.DictReader(f)] == ["48", "48", "96"]
    assert load_checkpoint(tmp_path / "low" / "best.pt")["epoch"] == 2  # the one full-size epoch

    calls.clear()
    fit(replace(TINY, epochs=2), tmp_path / "full", progress=False)
    assert calls == [{(96, 96)}, {(96, 96)}]


def test_low_res_antialias_reaches_the_augmentation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--low-res-antialias is passed to every augmented batch (and only it: off by default), is stored
    with the run, and without --low-res is refused by name before the run folder is made."""
    import wbc.augment
    from wbc.errors import ConfigError

    seen: list[tuple[int | None, bool]] = []
    real = wbc.augment.augment_batch

    def spy(x: torch.Tensor, cfg: object, gen: torch.Generator, size: int | None = None,
            antialias: bool = False, extent: float = 1.0) -> torch.Tensor:
        seen.append((size, antialias))
        return real(x, cfg, gen, size, antialias, extent)

    monkeypatch.setattr(train_mod, "augment_batch", spy)
    fit(replace(TINY, epochs=2, low_res_size=48, low_res_epochs=1, low_res_antialias=True), tmp_path / "aa",
        progress=False)
    assert {a for _, a in seen} == {True} and {s for s, _ in seen} == {48, None}
    assert json.loads((tmp_path / "aa" / "config.json").read_text())["train"]["low_res_antialias"] is True
    seen.clear()
    fit(replace(TINY, epochs=2, low_res_size=48, low_res_epochs=1), tmp_path / "plain", progress=False)
    assert {a for _, a in seen} == {False}
    with pytest.raises(ConfigError, match="add --low-res PX EPOCHS"):
        fit(replace(TINY, low_res_antialias=True), tmp_path / "r", progress=False)
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(("model", "size", "epochs", "message"), [
    ("wbcnet", 48, 3, "choose 1 to 2 epochs, fewer than the run's 3"),
    ("wbcnet", 48, 0, "choose 1 to 2 epochs"),
    ("wbcnet", 16, 1, "choose 32 px or more"),
    ("wbcnet", 96, 1, "less than the network's input, 96 px"),
    ("seed", 64, 1, "only wbcnet takes inputs of another size"),
])
def test_low_res_out_of_range_is_refused(tmp_path: Path, model: str, size: int, epochs: int, message: str) -> None:
    """A low resolution that would never reach full size, is half set, too small, not smaller, or
    for a network with a fixed input is refused by name before the run folder is made."""
    from wbc.errors import ConfigError

    cfg = replace(TINY, model=model, epochs=3, low_res_size=size, low_res_epochs=epochs)
    with pytest.raises(ConfigError, match=re.escape(message)):
        fit(cfg, tmp_path / "r", progress=False)
    assert not (tmp_path / "r").exists()


def test_pair_smoothing_that_would_outweigh_the_label_is_refused() -> None:
    """Pair smoothing that leaves the labelled class no larger a share than its partner (with label smoothing 0.2,
    0.4 or more) is refused naming the bound; just under it is a valid run."""
    from wbc.errors import ConfigError

    with pytest.raises(ConfigError, match=re.escape("pair smoothing 0.45: choose a value in [0, 0.40)")):
        check_config(replace(TINY, label_smoothing=0.2, pair_smoothing=0.45))
    check_config(replace(TINY, label_smoothing=0.2, pair_smoothing=0.39))


def test_export_warns_of_an_unfinished_or_near_chance_run(tiny_run: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """`wbc export` of an interrupted run says so and how to finish it; a model near chance on its
    held-out images is said to be; a finished run of fair accuracy gets no warning."""
    import shutil

    from wbc.checkpoint import save_checkpoint
    from wbc.cli import main
    from wbc.ship import export_warnings

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    state = load_checkpoint(run / "last.pt")
    assert state["stopped"] and export_warnings(run / "best.pt", {"calibration": {"val_accuracy": 0.9}}) == []
    few = export_warnings(run / "best.pt", {"calibration": {"val_accuracy": 0.9, "n_files": 8}})
    assert len(few) == 1 and few[0].startswith("its temperature and review threshold were fitted on only 8 validation")
    assert export_warnings(run / "best.pt", {"calibration": {"val_accuracy": 0.9, "n_files": 500}}) == []
    save_checkpoint(run / "last.pt", {**state, "stopped": False, "epoch": 0})
    assert main(["export", str(run), "--out", str(tmp_path / "e"), "--data", str(FIXTURE_IMAGES)]) == 0
    assert f"warning: the run {run} did not finish (epoch 1 of 2): `wbc train --out {run} --resume`" in (
        capsys.readouterr().err)
    assert export_warnings(tmp_path / "elsewhere" / "best.pt", {"calibration": {"val_accuracy": 0.3}}) == [
        "this model reads only 30.0% of its held-out images right (chance: 25%); its \"confident\" verdicts mean little"]
    # `wbc predict` with such a model says so too, each time: the export's warning is long gone by then.
    one = str(sorted((FIXTURE_IMAGES / "TEST_SIMPLE").rglob("*.jpeg"))[0])
    for accuracy, noted in ((0.3, True), (0.9, False), (None, False)):
        card = json.loads((tmp_path / "e" / "model.json").read_text())
        if accuracy is None:  # a hand-edited card: no note, and no traceback
            card["calibration"] = None
        else:
            card["calibration"]["val_accuracy"] = accuracy
        (tmp_path / "e" / "model.json").write_text(json.dumps(card))
        assert main(["predict", one, "--model", str(tmp_path / "e")]) == 0
        assert ("wbc: note: this model reads only 30.0% of its held-out images right" in capsys.readouterr().err) is noted
        # and its evaluation's report.md, read after the run's notes are gone
        assert main(["evaluate", "--model", str(tmp_path / "e"), "--folder", str(FIXTURE_IMAGES / "TEST_SIMPLE"),
                     "--out", str(tmp_path / f"ev{accuracy}"), "--quiet"]) == 0
        report = (tmp_path / f"ev{accuracy}" / "report.md").read_text()
        assert ("- **weak model**: this model reads only 30.0% of its held-out images right" in report) is noted
        assert "- **trained**: wbcnet, 2 epoch(s) of 2, seed 0" in report
    # Stopped among its low-resolution epochs, which are never the best: no best.pt yet, and the way on.
    (run / "best.pt").unlink()
    assert main(["export", str(run), "--out", str(tmp_path / "e2"), "--data", str(FIXTURE_IMAGES)]) == 2
    err = capsys.readouterr().err
    assert "has no best.pt yet, only last.pt" in err and f"`wbc train --out {run} --resume` finishes it" in err
    assert f"or export {run / 'last.pt'} as it is" in err and not (tmp_path / "e2" / "model.onnx").exists()


def test_one_training_writes_to_a_run_at_a_time(tmp_path: Path) -> None:
    """While a `wbc train` holds a run folder, a second (a --resume started beside it, or a new run) is
    refused by name and leaves the holder's folder alone; a failed start into a new folder leaves none."""
    import fcntl
    import os

    run = tmp_path / "run"
    run.mkdir()
    fd = os.open(run, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)  # the first training, as another process would hold it
    writing = run / ".last.pt.k2j4x9.tmp"  # the holder's checkpoint being written: not a killed write's
    writing.write_bytes(b"half")
    try:
        with pytest.raises(CheckpointError, match="another `wbc train` is writing to this run now"):
            fit(TINY, run, resume=True, progress=False)
        with pytest.raises(CheckpointError, match="another `wbc train` is writing to this run now"):
            fit(TINY, run, progress=False)
    finally:
        os.close(fd)
    assert writing.read_bytes() == b"half"
    writing.unlink()
    with pytest.raises(CheckpointError):  # unlocked now: on to the checkpoint, which is missing
        fit(TINY, tmp_path / "new", resume=True, progress=False)
    assert not (tmp_path / "new").exists()  # a failed start leaves no folder it made
    with pytest.raises(CheckpointError):  # its parents neither (an empty runs/ was left behind)
        fit(TINY, tmp_path / "runs" / "deeper" / "new", resume=True, progress=False)
    assert not (tmp_path / "runs").exists()
    with pytest.raises(CheckpointError):  # nor a folder named on the way and left by ".."
        fit(TINY, tmp_path / "runs" / ".." / "x" / "new", resume=True, progress=False)
    assert not (tmp_path / "runs").exists() and not (tmp_path / "x").exists()
    held = tmp_path / "held"
    held.mkdir()
    fd = os.open(held, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        with pytest.raises(CheckpointError, match="another `wbc train`"):
            fit(TINY, held, progress=False)
    finally:
        os.close(fd)
    assert held.is_dir()  # a refused start leaves the holder's folder alone


def test_two_holders_of_a_run_exclude_each_other(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A second `only_writer` of a run (two `wbc train` alike) is refused while the first holds it, and `being_written`
    says it is held; a refused start leaves the folder the holder is filling, even one it thought it made."""
    import wbc.run_folder
    from wbc.run_folder import being_written, only_writer

    run = tmp_path / "run"
    with only_writer(run):
        assert being_written(run)
        monkeypatch.setattr(wbc.run_folder, "missing_folders", lambda p: [run])  # raced: both saw no folder
        with pytest.raises(CheckpointError, match="another `wbc train` is writing to this run now"):
            with only_writer(run):
                pass
        assert run.is_dir()
    assert not being_written(run)


def test_a_config_json_without_a_network_is_not_a_runs(tmp_path: Path) -> None:
    """A config.json with a "train" section but no "model" one is not a wbc run's: a new run there is refused before
    it replaces the user's files."""
    from wbc.errors import OutputError
    from wbc.run_folder import refuse_others_files

    (tmp_path / "config.json").write_text(json.dumps({"train": {"lr": 3}}))
    with pytest.raises(OutputError, match="holds config.json, not of a run by wbc"):
        refuse_others_files(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"train": {}, "model": {}}))
    refuse_others_files(tmp_path)


def test_a_folder_that_cannot_be_locked_is_not_said_to_be_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`being_written` on a file system without locks (flock: ENOLCK) is False: --resume there said another `wbc
    train` was writing the run, and the user waited for none."""
    import errno
    import fcntl

    from wbc.run_folder import being_written

    def no_locks(fd: int, op: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    assert not being_written(tmp_path) and not being_written(tmp_path / "none")
    assert not being_written(tmp_path)  # the first let its probe's lock go
    monkeypatch.setattr(fcntl, "flock", no_locks)
    assert not being_written(tmp_path)


def test_sharp_warp_keeps_detail_and_repeats_the_edge() -> None:
    """robust-erase-sharp (e43) warps bicubic, within 0..1, with more fine detail left than bilinear, and
    where a rotation reaches past the crop it repeats the edge's colour instead of mirroring the crop."""
    from dataclasses import replace as dc_replace

    from wbc.augment import (
        ROBUST_ERASE,
        ROBUST_ERASE_SHARP,
        AugmentConfig,
        augment_batch,
    )

    with pytest.raises(ValueError, match="sample/pad"):
        AugmentConfig(pad="zeros")
    g = torch.Generator().manual_seed(0)
    texture = torch.rand(64, 3, 96, 96, generator=g) * 0.5 + 0.25  # fine detail everywhere
    geometry = dict(hed=0.0, blur_p=0.0, erase_p=0.0, brightness=0.0, contrast=0.0, channel_gain=0.0, gamma=0.0)
    smooth, sharp = (augment_batch(texture, dc_replace(c, **geometry), torch.Generator().manual_seed(1))
                     for c in (ROBUST_ERASE, ROBUST_ERASE_SHARP))
    assert 0 <= float(sharp.min()) and float(sharp.max()) <= 1

    def detail(x: torch.Tensor) -> float:  # mean squared difference of neighbouring pixels
        return float(((x[..., 1:, :] - x[..., :-1, :]) ** 2).mean())

    assert detail(sharp) > 1.2 * detail(smooth)
    # One bright corner: a rotation by about 45 degrees mirrors it into the out-of-crop corners under
    # "reflection", and repeats the dark edge next to it under "border".
    corner = torch.zeros(1, 3, 96, 96)
    corner[..., :8, :8] = 1.0
    spin = dict(scale=(1.0, 1.0), shift=0.0, **geometry)
    outs = {c.pad: augment_batch(corner.repeat(16, 1, 1, 1), dc_replace(c, **spin), torch.Generator().manual_seed(2))
            for c in (ROBUST_ERASE, ROBUST_ERASE_SHARP)}
    assert float(outs["reflection"].sum()) > float(outs["border"].sum())


def test_context_widens_the_cached_crops_at_the_same_scale(tmp_path: Path) -> None:
    """--context PX caches PX px of field around each training crop (at the crop's scale: 30 px of
    input are 50 source px of a 160 -> 96 crop), and is refused where that is not a whole number of
    source px; 0 leaves the crop alone."""
    from wbc.errors import ConfigError
    from wbc.imaging import PreprocessSpec
    from wbc.train import context_spec

    spec = PreprocessSpec()
    assert context_spec(spec, 0) is spec
    wide = context_spec(spec, 30)
    assert (wide.window, wide.size, wide.mean) == (260, 156, spec.mean)
    with pytest.raises(ConfigError, match="only by a multiple of 3 px"):
        context_spec(spec, 10)
    with pytest.raises(ConfigError, match="whole field"):
        context_spec(PreprocessSpec(mode="frame"), 3)
    with pytest.raises(ConfigError, match="context -3"):
        fit(replace(TINY, context=-3), tmp_path / "neg", progress=False)
    assert not (tmp_path / "neg").exists()


def test_context_crop_centre_is_the_test_crop(fixture_root: Path) -> None:
    """The middle of a widened crop is the network's crop, pixel for pixel away from its edge (where the
    resize's filter now reads real field), and the warp at zoom 1 without rotation frames exactly it."""
    from dataclasses import replace as dc_replace

    from wbc.augment import AugmentConfig, augment_batch
    from wbc.cache import load_arrays
    from wbc.data import list_split
    from wbc.imaging import PreprocessSpec
    from wbc.train import centre_crop, context_spec

    samples = list_split(fixture_root, "TRAIN")[:6]
    spec = PreprocessSpec()
    plain, _ = load_arrays(samples, spec, use_cache=False, progress=False)
    wide, _ = load_arrays(samples, context_spec(spec, 30), use_cache=False, progress=False)
    x = torch.from_numpy(wide).permute(0, 3, 1, 2).contiguous()
    middle = centre_crop(x, 30).permute(0, 2, 3, 1).numpy()
    assert middle.shape == plain.shape
    assert (middle[:, 2:-2, 2:-2] == plain[:, 2:-2, 2:-2]).all()
    still = AugmentConfig(rotate=False, scale=(1.0, 1.0), shift=0.0, brightness=0.0, contrast=0.0,
                          channel_gain=0.0, gamma=0.0)
    framed = augment_batch(x.float() / 255, still, torch.Generator().manual_seed(0), extent=96 / 156)
    assert torch.allclose(framed, centre_crop(x, 30).float() / 255, atol=1e-5)
    # Rotated by 45 degrees, the corners of a plain crop are mirrored; with context they are real field.
    turned = dc_replace(still, rotate=True)
    a = augment_batch(x.float() / 255, turned, torch.Generator().manual_seed(1), 96, extent=96 / 156)
    b = augment_batch(centre_crop(x, 30).float() / 255, turned, torch.Generator().manual_seed(1), 96)
    centre = (slice(None), slice(None), slice(32, 64), slice(32, 64))
    assert torch.allclose(a[centre], b[centre], atol=0.02)  # the same middle, resampled alike


def test_context_run_trains_and_validates_on_the_networks_crop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run with --context loads the widened crops, feeds the network its own input size in training
    and validation, and stores the setting; the model's crop (what export and predict use) is unchanged."""
    sizes: list[tuple[bool, tuple[int, int]]] = []
    real_build, real_load = train_mod.build_model, train_mod.load_prepared
    loaded: list[int] = []

    def hooked_build(*args: object, **kwargs: object) -> torch.nn.Module:
        net = real_build(*args, **kwargs)
        net.register_forward_pre_hook(lambda m, i: sizes.append((m.training, tuple(i[0].shape[2:]))))
        return net

    def spy_load(samples: object, spec: object, **kw: object) -> object:
        loaded.append(spec.size)  # type: ignore[attr-defined]
        return real_load(samples, spec, **kw)

    monkeypatch.setattr(train_mod, "build_model", hooked_build)
    monkeypatch.setattr(train_mod, "load_prepared", spy_load)
    run = fit(replace(TINY, context=6), tmp_path / "ctx", progress=False)
    assert loaded == [108]
    assert {s for _, s in sizes} == {(96, 96)} and {t for t, _ in sizes} == {True, False}
    state = load_checkpoint(run / "best.pt")
    assert state["train_config"]["context"] == 6
    assert model_from_checkpoint(state)[1].window == 160


@pytest.mark.parametrize(("device", "message"), [
    ("gpu", "not a torch device; choose cpu or cuda"),
    ("mps", "wbc trains on cpu or cuda only"),
])
def test_a_device_it_cannot_train_on_is_refused(tmp_path: Path, device: str, message: str) -> None:
    """A device that is not one, or one wbc does not train on, is refused by name before any work."""
    from wbc.errors import ConfigError

    with pytest.raises(ConfigError, match=re.escape(message)):
        fit(replace(TINY, device=device), tmp_path / "r", progress=False)
    assert not (tmp_path / "r").exists()


def test_cuda_without_a_gpu_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--device cuda where torch sees no GPU says so and names the way out, before the run folder is made."""
    import torch

    from wbc.errors import ConfigError

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match=re.escape("no CUDA GPU is visible to this torch")) as e:
        fit(replace(TINY, device="cuda"), tmp_path / "r", progress=False)
    assert "--device cpu" in str(e.value)
    assert not (tmp_path / "r").exists()


def test_fit_trains_on_crops_given_without_the_data_set(tmp_path: Path) -> None:
    """Crops handed to fit (a machine that holds them, not the data set) train a run on the same
    cell-grouped split as the files would; crops of another size are refused by name."""
    from wbc.cache import load_arrays
    from wbc.data import list_split
    from wbc.errors import DataError
    from wbc.model import default_config

    x, samples = load_arrays(list_split(FIXTURE_IMAGES, "TRAIN"), default_config("wbcnet").preprocess, progress=False)
    cfg = replace(TINY, epochs=1, data=str(tmp_path / "no-data-here"))
    fit(cfg, tmp_path / "given", progress=False, crops=(x, samples))
    fit(replace(TINY, epochs=1), tmp_path / "files", progress=False)
    split = [json.loads((tmp_path / r / "split.json").read_text()) for r in ("given", "files")]
    assert split[0] == split[1] and split[0]["val_cells"]
    assert json.loads((tmp_path / "given" / "config.json").read_text())["data_root"] == "crops given to fit"
    fit(replace(cfg, limit_cells=2, val_fraction=0.45), tmp_path / "two", progress=False, crops=(x, samples))
    kept = json.loads((tmp_path / "two" / "split.json").read_text())
    assert len(kept["train_cells"]) + len(kept["val_cells"]) == 8  # the first 2 cells of each class
    with pytest.raises(DataError, match=re.escape("takes one (N, 96, 96, 3) crop per sample")):
        fit(cfg, tmp_path / "small", progress=False, crops=(x[:, :48, :48], samples))


def test_view_logits_are_each_views_own() -> None:
    """view_logits (the cross-validation on crops) predicts view v of every crop as that view alone:
    the 8 views of imaging.dihedral_views, in its order."""
    import numpy as np
    import torch

    from wbc.imaging import dihedral_views
    from wbc.model import build_model, default_config
    from wbc.train import predict_logits, to_tensor, view_logits

    torch.manual_seed(0)
    cfg = default_config("wbcnet")
    net = build_model("wbcnet", cfg)
    x = np.random.default_rng(0).integers(0, 256, (3, 96, 96, 3), dtype=np.uint8)
    lg = view_logits(net, x, cfg.preprocess)
    views = dihedral_views(x, 8)
    assert lg.shape == (8, 3, 4)
    for v in (0, 5):
        one = predict_logits(net, to_tensor(views[v * 3 : v * 3 + 3]), cfg.preprocess).numpy()
        assert np.allclose(lg[v], one, atol=1e-5)
    assert not np.allclose(lg[0], lg[5], atol=1e-3)


def test_limit_cells_counts_readable_cells_with_skip_bad(data_copy: Path) -> None:
    """--limit-cells with --skip-bad: an unreadable file among the first cells of a class is left out and the
    next cell makes it up, so the run has the cells asked for (it had one fewer, and a fold split then failed
    with advice to raise --limit-cells); without a bad file the files are those --limit-cells takes, in order."""
    from wbc.cache import load_arrays
    from wbc.data import list_split
    from wbc.errors import DataError
    from wbc.imaging import PreprocessSpec
    from wbc.train import _load_limited, _subset

    spec = PreprocessSpec()
    listed = list_split(data_copy, "TRAIN", every_class=True)
    x, kept, _ = _load_limited(listed, 2, spec, skip_bad=True, progress=False)
    x_plain, plain = load_arrays(_subset(listed, 2), spec, progress=False)
    assert kept == plain and (x == x_plain).all()
    (data_copy / "TRAIN" / "NEUTROPHIL" / "000broken.jpeg").write_bytes(b"not an image")
    listed = list_split(data_copy, "TRAIN", every_class=True)
    assert "000broken.jpeg" in {s.path.name for s in _subset(listed, 2)}  # one of the two cells it takes
    x, kept, sides = _load_limited(listed, 2, spec, skip_bad=True, progress=False)
    cells = {lab: {s.cell for s in kept if s.label == lab} for lab in range(4)}
    assert all(len(c) == 2 for c in cells.values()) and len(x) == len(kept) == len(sides)
    assert "000broken.jpeg" not in {s.path.name for s in kept}
    with pytest.raises(DataError, match="000broken.jpeg"):  # without --skip-bad it is named, as before
        _load_limited(listed, 2, spec, skip_bad=False, progress=False)


def test_run_files_nested_too_deep_are_named(tmp_path: Path) -> None:
    """A run's split.json and config.json of brackets nested 100,000 deep ended in RecursionError tracebacks (a
    ValueError reader let it through): each reader names the file, and a new run does not take them for its own."""
    from wbc.crossval import saved_config
    from wbc.errors import OutputError
    from wbc.io import read_json
    from wbc.run_folder import read_val_cells, refuse_others_files, run_split

    run = tmp_path / "run"
    run.mkdir()
    for name in ("split.json", "config.json"):
        (run / name).write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ValueError, match="nested too deeply to read"):
        read_json(run / "split.json")
    with pytest.raises(CheckpointError, match=r"split.json with the validation cells is missing or damaged: put back the "
                                              r"run's own \(a copy of the run folder\), or train the run again"):
        read_val_cells(run)
    with pytest.raises(CheckpointError, match=r"split.json, the cells the run trained on, is missing or damaged"):
        run_split(run)
    with pytest.raises(CheckpointError, match=r"config.json is missing or damaged \(nested too deeply to read\)"):
        saved_config(run)
    with pytest.raises(OutputError, match="not of a run by wbc"):
        refuse_others_files(run)
    (run / "config.json").write_text('["train", "model"]')  # a list of the names a run's config holds: not one
    with pytest.raises(OutputError, match="not of a run by wbc"):
        refuse_others_files(run)
    (tmp_path / "photos").mkdir()  # a folder that is no run, given as --teacher: not "split.json ... damaged"
    with pytest.raises(CheckpointError, match=r"photos: not a training run: it holds no split.json"):
        read_val_cells(tmp_path / "photos")


def test_the_learning_rate_warms_up_then_follows_a_half_cosine() -> None:
    """The cosine schedule: over the warm-up epochs the rate climbs linearly to lr (its first step at lr / the
    warm-up's steps, never 0), then falls on a half cosine from lr to 0 over the steps after the warm-up; the
    constant one keeps lr. 3 epochs of 4 steps, 1 epoch of warm-up."""
    from wbc.train import _make_schedule

    def rates(cfg: TrainConfig) -> list[float]:
        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=cfg.lr)
        sched = _make_schedule(opt, cfg, steps_per_epoch=4)
        out = []
        for _ in range(12):
            out.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        return out

    cfg = replace(TINY, epochs=3, lr=0.01, warmup_epochs=1, schedule="cosine")
    cosine = [0.01 * 0.5 * (1 + math.cos(math.pi * s / 8)) for s in range(8)]
    assert rates(cfg) == pytest.approx([0.0025, 0.005, 0.0075, 0.01, *cosine])
    assert rates(replace(cfg, schedule="constant")) == pytest.approx([0.01] * 12)


def test_class_weights_are_balanced_over_the_types_present() -> None:
    """Inverse-frequency weights n / (types present x files of the type): 3 eosinophils and 1 lymphocyte weigh
    4/6 and 2; a type with no files keeps weight 1."""
    import numpy as np

    from wbc.train import _class_weights

    assert _class_weights(np.array([0, 0, 0, 1])).tolist() == pytest.approx([4 / 6, 2.0, 1.0, 1.0])


def test_validation_figures_pool_a_cells_views() -> None:
    """The validation's cell accuracy reads each cell by its views' mean (as the evaluation does), its accuracy
    and macro-F1 the files: a cell of two views, one right at 0.9 and one wrong at 0.6, is right (0.65), where
    the files are half right."""
    import numpy as np

    from wbc.train import _val_metrics

    probs = np.array([[0.9, 0.1, 0, 0], [0.4, 0.6, 0, 0], [0.1, 0.9, 0, 0]])
    m = _val_metrics(probs, np.array([0, 0, 1]), ["a", "a", "b"], None)
    assert m["val_accuracy"] == pytest.approx(2 / 3) and m["val_cell_accuracy"] == 1.0
    assert m["val_macro_f1"] == pytest.approx((2 / 3 + 2 / 3) / 2)
    assert m["val_loss"] == pytest.approx(-(math.log(0.9) + math.log(0.4) + math.log(0.9)) / 3)


def test_an_epoch_trains_on_every_file_once_in_a_shuffled_order(monkeypatch: pytest.MonkeyPatch) -> None:
    """One epoch's batches hold each file exactly once, the last short batch of two too, in an order drawn from the
    epoch's generator: files listed class by class must not make batches of one class, and each epoch its own."""
    from wbc.model import build_model, default_config
    from wbc.train import _make_schedule, make_optimizer, train_one_epoch

    mcfg = default_config("wbcnet", size=32, widths=[4])
    cfg = replace(TINY, batch_size=4, augment="none", mixup=0.0)
    x = torch.randint(0, 256, (10, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    y = torch.arange(10) % 4
    seen: list[int] = []
    real_loss = train_mod._loss
    monkeypatch.setattr(train_mod, "_loss", lambda logits, idx, *a: seen.extend(idx.tolist()) or real_loss(logits, idx, *a))

    def order(seed: int) -> list[int]:
        seen.clear()
        model = build_model("wbcnet", mcfg)
        opt = make_optimizer(model, cfg)
        train_one_epoch(model, x, y, opt, _make_schedule(opt, cfg, 3), cfg, mcfg.preprocess, None,
                        torch.Generator().manual_seed(seed), progress=False)
        return list(seen)

    first, second = order(1), order(2)
    assert sorted(first) == list(range(10)) and sorted(second) == list(range(10))
    assert first != list(range(10)) and first != second


def test_each_epoch_draws_anew_and_a_seed_repeats_its_draws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every epoch's shuffle and augmentation come from a generator of its own (the same draws each epoch would
    show the network the same views again and again), fixed by --seed and the epoch: the same seed draws the same,
    another seed other draws."""
    states: list[torch.Tensor] = []

    def record(model, x, y, opt, sched, cfg, spec, weights, gen, *a, **k):  # noqa: ANN001, ANN002, ANN003, ANN202
        states.append(gen.get_state())
        return 1.0

    monkeypatch.setattr(train_mod, "train_one_epoch", record)
    for seed, out in ((0, "a"), (0, "b"), (1, "c")):
        fit(replace(TINY, epochs=2, seed=seed), tmp_path / out, progress=False)
    a1, a2, b1, b2, c1, c2 = states
    assert not torch.equal(a1, a2)
    assert torch.equal(a1, b1) and torch.equal(a2, b2)
    assert not torch.equal(a1, c1) and not torch.equal(a2, c2)


def test_training_sees_the_input_that_prediction_gives() -> None:
    """Training's and validation's normalisation is `imaging.to_input`'s, which the shipped model's graph and
    `wbc predict` use: a network trained on other numbers reads every photo wrong."""
    import numpy as np

    from wbc.imaging import PreprocessSpec, to_input
    from wbc.train import _normalise

    spec = PreprocessSpec()
    crops = np.random.default_rng(0).integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)
    got = _normalise(torch.from_numpy(crops).permute(0, 3, 1, 2).float() / 255, spec)
    np.testing.assert_allclose(got.numpy(), to_input(crops, spec), atol=1e-5)


def test_an_improvement_starts_the_patience_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Early stopping counts the epochs since the last improvement, not all epochs without one: with patience 2,
    a worse epoch, a better one and a worse one again do not stop the run."""
    monkeypatch.setattr(train_mod, "train_one_epoch", lambda *a, **k: 1.0)
    real_val, losses = train_mod._val_metrics, [1.0, 1.1, 0.5, 0.6, 0.4]
    monkeypatch.setattr(train_mod, "_val_metrics", lambda *a, **k: {**real_val(*a, **k), "val_loss": losses.pop(0)})
    run = fit(replace(TINY, epochs=5, patience=2, monitor="val_loss"), tmp_path / "r", progress=False)
    last = load_checkpoint(run / "last.pt")
    assert len(last["history"]) == 5 and last["best"] == 0.4 and last["bad_epochs"] == 0


def test_the_training_loss_weighs_types_by_their_share_of_the_training_files(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """With class weights (the default) the loss weighs each type by the inverse of its share of the training part's
    files; without, every type alike."""
    from wbc.train import _class_weights

    got: list[tuple[torch.Tensor, torch.Tensor | None]] = []

    def record(model, x, y, opt, sched, cfg, spec, weights, *a, **k):  # noqa: ANN001, ANN002, ANN003, ANN202
        got.append((y, weights))
        return 1.0

    monkeypatch.setattr(train_mod, "train_one_epoch", record)
    fit(replace(TINY, epochs=1), tmp_path / "a", progress=False)
    fit(replace(TINY, epochs=1, class_weights=False), tmp_path / "b", progress=False)
    (y, weights), (_, none) = got
    assert weights is not None and torch.equal(weights, _class_weights(y.numpy())) and none is None


def test_distillation_weighs_the_teachers_and_the_labels_as_asked() -> None:
    """The loss is (1 - distill) x the labels' cross-entropy + distill x the teachers': distill 0 is the labels'
    alone, 1 the teachers' alone, and 0.7 the mix of the two."""
    import torch.nn.functional as F

    from wbc.train import _loss

    gen = torch.Generator().manual_seed(0)
    logits, y = torch.randn(6, 4, generator=gen), torch.tensor([0, 1, 2, 3, 0, 1])
    soft = torch.softmax(torch.randn(6, 4, generator=gen), 1)
    idx = torch.arange(6)
    cfg = replace(TINY, label_smoothing=0.0, pair_smoothing=0.0)
    labels = F.cross_entropy(logits, y)
    teachers = -(soft * F.log_softmax(logits, 1)).sum(1).mean()
    for w in (0.0, 0.7, 1.0):
        assert float(_loss(logits, idx, y, soft, None, replace(cfg, distill=w))) == pytest.approx(
            float((1 - w) * labels + w * teachers), rel=1e-5)


def test_the_weight_average_follows_the_training() -> None:
    """With --ema the average is updated after every step: after an epoch it has left the initial weights (an average
    never updated would be saved, validated and shipped as the untrained network) and is not the trained weights."""
    from wbc.model import build_model, default_config
    from wbc.train import _make_ema, _make_schedule, make_optimizer, train_one_epoch

    mcfg = default_config("wbcnet", size=32, widths=[4])
    cfg = replace(TINY, batch_size=4, augment="none", mixup=0.0)
    x = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    model = build_model("wbcnet", mcfg)
    start = [p.detach().clone() for p in model.parameters()]
    ema = _make_ema(model, 0.5)
    opt = make_optimizer(model, cfg)
    train_one_epoch(model, x, torch.arange(8) % 4, opt, _make_schedule(opt, cfg, 2), cfg, mcfg.preprocess, None,
                    torch.Generator().manual_seed(0), progress=False, ema=ema)
    moved = [(p0, q, p) for p0, p, q in zip(start, model.parameters(), ema.module.parameters()) if not torch.equal(p0, p)]
    assert moved and all(not torch.equal(q, p0) and not torch.equal(q, p) for p0, q, p in moved)
