"""Calibration, test-time views, augmentation and the robustness shifts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import FIXTURE_IMAGES

from wbc.calibration import (
    accuracy_at_coverage,
    apply_confidence_map,
    fit_confidence_map,
    fit_temperature,
    remap_top,
    review_threshold,
    softmax,
    tta_probs,
)
from wbc.decode import load_image
from wbc.imaging import dihedral_views
from wbc.robustness import EXTRA_SHIFTS, SHIFTS, run_shifts, scale, stain

EOS = FIXTURE_IMAGES / "TEST_SIMPLE" / "EOSINOPHIL" / "_7_2284.jpeg"


class TestCalibration:
    @pytest.mark.parametrize("t", [2.5, 0.4])
    def test_recovers_known_temperature(self, t: float) -> None:
        """Labels drawn from softmax(logits / t): the fitted temperature is close to t, for an overconfident
        network (2.5) and an underconfident one (0.4, as mixup leaves): the coarse grid is even in log T, so that
        its step near 0.4 is as fine as near 2.5 (an even grid's 0.12 put the fit 6% off there)."""
        rng = np.random.default_rng(0)
        logits = rng.normal(0, 4, size=(1, 20000, 4))
        p = softmax(logits[0], t)
        y = np.array([rng.choice(4, p=row) for row in p])
        assert fit_temperature(logits, y) == pytest.approx(t, rel=0.04)

    @pytest.mark.parametrize("scale", [40.0, 0.01])
    def test_stays_within_its_grid(self, scale: float) -> None:
        """Logits that carry nothing (labels drawn apart from them) on 8 files want T without end (and
        sharp right ones T near 0): the fit stops at the grid's ends, not 6% past them."""
        from wbc.calibration import T_MAX, T_MIN

        rng = np.random.default_rng(1)
        logits = rng.normal(0, scale, size=(1, 8, 4))
        y = rng.integers(0, 4, 8) if scale > 1 else logits[0].argmax(1)
        t = fit_temperature(logits, y)
        assert T_MIN <= t <= T_MAX
        assert t == pytest.approx(T_MAX if scale > 1 else T_MIN)

    def test_nll_is_the_mean_over_cases(self) -> None:
        """The NLL that cv.json and the ablation benchmark report is per case, so that folds and sets of other
        sizes compare (a sum fitted the same temperature and reported a figure that grew with the set)."""
        from wbc.calibration import nll

        probs = np.array([[0.5, 0.5, 0, 0], [0.25, 0.75, 0, 0], [1.0, 0, 0, 0]])
        assert nll(probs, np.array([0, 1, 0])) == pytest.approx((np.log(2) + np.log(4 / 3)) / 3)

    def test_tta_averages_views(self) -> None:
        """TTA probabilities are the mean of the views' softmax."""
        v = np.array([[[2.0, 0, 0, 0]], [[0, 2.0, 0, 0]]])
        assert tta_probs(v)[0] == pytest.approx((softmax(v[0, 0]) + softmax(v[1, 0])) / 2)

    def test_coverage(self) -> None:
        """At 50% coverage only the two most confident cases count: one right, one wrong."""
        probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.6, 0.4], [0.55, 0.45]])
        y = np.array([0, 1, 1, 1])
        assert accuracy_at_coverage(probs, y, 0.5) == 0.5
        assert accuracy_at_coverage(probs, y, 1.0) == 0.25
        # 90% of 3 cases is 2.7: the 3 rounded to, not the 2 truncated to (the least confident one is wrong)
        assert accuracy_at_coverage(probs[:3], np.array([0, 0, 1]), 0.9) == pytest.approx(2 / 3)
        assert review_threshold(probs, 0.75) == pytest.approx(np.quantile([0.9, 0.8, 0.6, 0.55], 0.25))


class TestConfidenceMap:
    @staticmethod
    def underconfident(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities (n, 4) whose top class is right with probability 2 * confidence - 0.5 (so
        0.5 at confidence 0.5, 1 at 0.75): a curve no temperature can straighten; labels (n,)."""
        rng = np.random.default_rng(seed)
        conf = rng.uniform(0.5, 0.75, n)
        probs = np.tile(((1 - conf) / 3)[:, None], (1, 4))
        probs[:, 0] = conf
        right = rng.random(n) < 2 * conf - 0.5
        return probs, np.where(right, 0, rng.integers(1, 4, n))

    def test_map_straightens_the_curve(self) -> None:
        """Fitted on one sample, the map gives another sample's confidence as its accuracy (ECE < 0.02
        from 0.125), keeps every decision and leaves rows that sum to 1."""
        from wbc.metrics import expected_calibration_error

        probs, y = self.underconfident(20000, 0)
        cmap = fit_confidence_map(probs, y)
        test, ty = self.underconfident(20000, 1)
        mapped = apply_confidence_map(test, cmap)
        assert expected_calibration_error(test, ty) > 0.1
        assert expected_calibration_error(mapped, ty) < 0.02
        assert (mapped.argmax(1) == test.argmax(1)).all() and mapped.sum(1) == pytest.approx(1.0)
        assert max(cmap["y"]) <= 0.995 and np.all(np.diff(cmap["y"]) >= 0)

    def test_remap_keeps_the_decision(self) -> None:
        """Asked to lower the top class below the runner-up, remap_top stops just above the tie."""
        q = np.array([[0.5, 0.4, 0.05, 0.05]])
        out = remap_top(q, np.array([0.2]))
        assert out.argmax(1)[0] == 0 and out[0, 0] > out[0, 1] and out.sum() == pytest.approx(1.0)
        assert out[0, 1] / out[0, 2] == pytest.approx(8.0)  # the rest keep their proportions

    def test_no_map_is_identity(self) -> None:
        q = softmax(np.random.default_rng(0).normal(size=(5, 4)))
        assert apply_confidence_map(q, None) is q


class TestViews:
    def test_dihedral(self) -> None:
        """Eight distinct views; view 0 is the image; view 1 is it turned by 90 degrees."""
        x = np.random.default_rng(0).integers(0, 255, (2, 5, 5, 3), dtype=np.uint8)
        v = dihedral_views(x)
        assert v.shape == (16, 5, 5, 3)
        assert np.array_equal(v[:2], x) and np.array_equal(v[2:4], np.rot90(x, 1, axes=(1, 2)))
        assert len({v[i * 2].tobytes() for i in range(8)}) == 8
        turns = [np.rot90(x, k, axes=(1, 2)) for k in range(4)]
        assert np.array_equal(v, np.concatenate(turns + [t[:, :, ::-1] for t in turns]))
        assert v.flags.c_contiguous and v.dtype == np.uint8
        assert np.array_equal(dihedral_views(x.astype(np.float32)), v.astype(np.float32))  # any dtype
        flipped = x[:, ::-1]  # not contiguous
        assert np.array_equal(dihedral_views(flipped)[2:4], np.rot90(flipped, 1, axes=(1, 2)))

    def test_four_views_are_the_rotations(self) -> None:
        """views=4: the four rotations alone, in the 8 views' order (their first half); no other count."""
        x = np.random.default_rng(1).integers(0, 255, (3, 6, 6, 3), dtype=np.uint8)
        four = dihedral_views(x, 4)
        assert four.shape == (12, 6, 6, 3)
        assert np.array_equal(four, np.concatenate([np.rot90(x, k, axes=(1, 2)) for k in range(4)]))
        assert np.array_equal(four, dihedral_views(x)[:12])
        for bad in (1, 2, 6):
            with pytest.raises(ValueError, match="views must be 4"):
                dihedral_views(x, bad)

    def test_shipped_card_averages_the_rotations(self, tmp_path: Path) -> None:
        """The shipped card asks for TEST_TIME_VIEWS (4) views, and a card asking for another count
        than 1, 4 or 8 is refused with the card's name."""
        import json
        import shutil

        from wbc.card import resolve_model
        from wbc.errors import ModelFileError
        from wbc.imaging import TEST_TIME_VIEWS
        from wbc.predict import Predictor

        assert TEST_TIME_VIEWS == 4 and Predictor().tta_views == TEST_TIME_VIEWS
        onnx, card = resolve_model(None)
        shutil.copy(onnx, tmp_path)
        c = json.loads(card.read_text())
        for bad in (2, "4", True, 4.0):
            c["tta_views"] = bad
            (tmp_path / card.name).write_text(json.dumps(c))
            with pytest.raises(ModelFileError, match="model.json: tta_views is"):
                Predictor(tmp_path)

    @pytest.mark.parametrize("views", [None, 8, 1])
    def test_predictor_tta_is_mean_of_views(self, views: int | None, tmp_path: Path) -> None:
        """The predictor's TTA output is the mean of the graph's probabilities over the card's views (the
        shipped card's 4 rotations; a card of 8 views or of 1 alike), put through the card's confidence map."""
        import json
        import shutil

        from wbc.card import resolve_model
        from wbc.predict import Predictor

        model = None
        if views is not None:
            onnx, card = resolve_model(None)
            shutil.copy(onnx, tmp_path)
            (tmp_path / card.name).write_text(json.dumps({**json.loads(card.read_text()), "tta_views": views}))
            model = tmp_path
        p = Predictor(model)
        assert p.tta_views == (views or 4)
        x, _ = p.analyse(load_image(EOS))
        per_view = p.run(dihedral_views(x[None], p.tta_views) if p.tta_views > 1 else x[None])[0]
        mean = per_view.mean(0, keepdims=True)
        assert p.predict_probs(x[None]) == pytest.approx(apply_confidence_map(mean, p.confidence_map), abs=1e-6)

    def test_magnified_photos_read_as_at_data_scale(self) -> None:
        """Each fixture file enlarged 4x (another microscope's magnification) gets the class the shipped
        model gives it at the data set's scale, for at least 28 of 32 (30 when written; 14 without
        shrinking the field first)."""
        from PIL import Image

        from wbc.imaging import prepare
        from wbc.predict import Predictor

        p = Predictor()
        files = sorted(FIXTURE_IMAGES.rglob("*.jpeg"))
        same = 0
        for f in files:
            rgb = load_image(f)
            h, w, _ = rgb.shape
            big = np.asarray(Image.fromarray(rgb).resize((4 * w, 4 * h), Image.BILINEAR))
            same += int(p.predict_probs(prepare(rgb, p.spec)[None]).argmax() == p.predict_probs(prepare(big, p.spec)[None]).argmax())
        assert len(files) == 32 and same >= 28


class TestAugment:
    def test_hed_identity_and_shapes(self) -> None:
        """HED jitter with no change returns the image; a batch keeps its shape and range."""
        torch = pytest.importorskip("torch")
        from wbc.augment import ROBUST, augment_batch, gaussian_blur, hed_jitter

        x = torch.rand(4, 3, 16, 16) * 0.9 + 0.05
        same = hed_jitter(x, torch.ones(4, 3), torch.zeros(4, 3))
        assert torch.allclose(same, x, atol=1e-4)
        y = augment_batch(x, ROBUST, torch.Generator().manual_seed(0))
        assert y.shape == x.shape and y.min() >= 0 and y.max() <= 1
        b = gaussian_blur(x, 1.0)
        assert b.shape == x.shape and b.std() < x.std()

    def test_blur_has_the_sigma_asked(self) -> None:
        """A point blurred with sigma 2 px spreads with a variance near 4 px^2 along each axis (the kernel cut at
        2.5 sigma keeps 91% of it): a kernel of fixed radius 1 gave 0.6, a far weaker blur than the recipe's."""
        torch = pytest.importorskip("torch")
        from wbc.augment import gaussian_blur

        x = torch.zeros(1, 1, 41, 41)
        x[0, 0, 20, 20] = 1.0
        b = gaussian_blur(x, 2.0)[0, 0]
        d2 = (torch.arange(41.0) - 20) ** 2
        assert b.sum() == pytest.approx(1.0, abs=1e-5)
        assert 0.85 * 4 < float((b.sum(0) * d2).sum()) < 4 and 0.85 * 4 < float((b.sum(1) * d2).sum()) < 4

    def test_colour_jitter_is_each_images_own(self) -> None:
        """Brightness is drawn per image (one draw for the batch made every image of it alike), and contrast
        scales each image about its own mean, which it keeps (about the batch's, a dark image came out lighter)."""
        torch = pytest.importorskip("torch")
        from wbc.augment import AugmentConfig, augment_batch

        still = dict(rotate=False, scale=(1.0, 1.0), shift=0.0, brightness=0, contrast=0, channel_gain=0, gamma=0)
        x = torch.rand(8, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 0.1 + 0.2
        x[4:] += 0.3  # four dark images and four lighter ones (none clipped by x1.3)
        bright = augment_batch(x, AugmentConfig(**{**still, "brightness": 0.3}), torch.Generator().manual_seed(1)) / x
        gains = bright.flatten(1).mean(1)
        assert torch.allclose(bright.flatten(1), gains[:, None], atol=1e-4) and gains.max() - gains.min() > 0.05
        y = augment_batch(x, AugmentConfig(**{**still, "contrast": 0.5}), torch.Generator().manual_seed(1))
        assert torch.allclose(y.mean(dim=(1, 2, 3)), x.mean(dim=(1, 2, 3)), atol=1e-4)
        assert (y.std(dim=(1, 2, 3)) / x.std(dim=(1, 2, 3)) - 1).abs().max() > 0.1

    def test_rotation_comes_with_a_mirror_half_the_time(self) -> None:
        """`rotate` turns each image by any angle and mirrors about half of them: a mirror image is no rotation of
        the cell, so without it the network never saw a cell's other hand. Told by a chiral pair of spots (red
        right of the centre, green below it): a turn keeps the sign of their cross product, a mirror flips it."""
        torch = pytest.importorskip("torch")
        from wbc.augment import AugmentConfig, augment_batch

        geo = AugmentConfig(scale=(1.0, 1.0), shift=0.0, brightness=0, contrast=0, channel_gain=0, gamma=0)
        x = torch.zeros(200, 3, 33, 33)
        x[:, 0, 15:18, 23:26] = 1.0  # red 8 px right of the centre
        x[:, 1, 23:26, 15:18] = 1.0  # green 8 px below it
        y = augment_batch(x, geo, torch.Generator().manual_seed(0))
        grid = torch.arange(33.0) - 16

        def centroid(c: int) -> tuple[torch.Tensor, torch.Tensor]:
            w = y[:, c]
            total = w.sum(dim=(1, 2))
            return (w.sum(1) * grid).sum(1) / total, (w.sum(2) * grid).sum(1) / total  # x, y

        (rx, ry), (gx, gy) = centroid(0), centroid(1)
        assert (torch.hypot(rx, ry) > 6).all() and (torch.hypot(gx, gy) > 6).all()  # the spots stay whole
        turned = rx * gy - ry * gx  # +64 unmirrored
        assert (turned.abs() > 30).all()
        assert 0.35 < (turned < 0).float().mean() < 0.65
        angles = torch.atan2(ry, rx)
        assert angles.min() < -2.5 and angles.max() > 2.5  # any angle, not a quarter turn at most

    def test_augment_to_a_smaller_size(self) -> None:
        """With `size` the warp samples the output at size x size (progressive resizing), from the same
        draws: asking for the input's own size is the plain call, and a smaller one is that image
        seen at lower resolution, not a crop of it."""
        torch = pytest.importorskip("torch")
        import torch.nn.functional as F

        from wbc.augment import ROBUST, AugmentConfig, augment_batch

        x = torch.rand(6, 3, 32, 32) * 0.9 + 0.05
        same = augment_batch(x, ROBUST, torch.Generator().manual_seed(2), 32)
        assert torch.equal(same, augment_batch(x, ROBUST, torch.Generator().manual_seed(2)))
        small = augment_batch(x, ROBUST, torch.Generator().manual_seed(2), 16)
        assert small.shape == (6, 3, 16, 16) and small.min() >= 0 and small.max() <= 1
        # Geometry alone (no colour or blur draws after the warp differ): the 16 px output matches the
        # 32 px one shrunk by averaging 2 x 2 blocks, far closer than another image's would.
        geo = AugmentConfig(brightness=0, contrast=0, channel_gain=0, gamma=0)
        x = F.interpolate(torch.rand(6, 3, 4, 4), size=(32, 32), mode="bilinear", align_corners=False)  # smooth
        big = augment_batch(x, geo, torch.Generator().manual_seed(5))
        low = augment_batch(x, geo, torch.Generator().manual_seed(5), 16)
        err = (F.avg_pool2d(big, 2) - low).abs().mean()
        assert err < 0.2 * (F.avg_pool2d(big, 2) - low.roll(1, 0)).abs().mean()

    def test_antialiased_low_resolution(self) -> None:
        """With `antialias`, a texture finer than the low resolution (a 1 px checkerboard) reaches the
        network as its mean grey, where sparse sampling shows a coarse false pattern (aliasing); a smooth
        image reads the same either way, from the same draws, and the full size is untouched."""
        torch = pytest.importorskip("torch")
        import torch.nn.functional as F

        from wbc.augment import ROBUST, AugmentConfig, augment_batch

        geo = AugmentConfig(rotate=False, scale=(1.0, 1.0), shift=0.0, brightness=0, contrast=0, channel_gain=0,
                            gamma=0)
        ij = torch.arange(96)
        checker = ((ij[:, None] + ij[None, :]) % 2).float().expand(2, 3, 96, 96) * 0.8 + 0.1  # mean 0.5
        aliased = augment_batch(checker, geo, torch.Generator().manual_seed(0), 64)
        smooth = augment_batch(checker, geo, torch.Generator().manual_seed(0), 64, antialias=True)
        assert aliased.std() > 0.1 and smooth.std() < 0.02
        assert smooth.mean() == pytest.approx(0.5, abs=0.01)

        x = F.interpolate(torch.rand(4, 3, 6, 6), size=(96, 96), mode="bilinear", align_corners=False) * 0.8 + 0.1
        g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
        a = augment_batch(x, ROBUST, g1, 64)
        b = augment_batch(x, ROBUST, g2, 64, antialias=True)
        assert (a - b).abs().mean() < 0.01 and torch.equal(g1.get_state(), g2.get_state())
        assert torch.equal(augment_batch(x, ROBUST, torch.Generator().manual_seed(4), antialias=True),
                           augment_batch(x, ROBUST, torch.Generator().manual_seed(4)))
        # With an identity warp the low-resolution crop is exactly the antialiased shrink of the crop.
        shrunk = F.interpolate(x, size=(64, 64), mode="bilinear", antialias=True, align_corners=False)
        assert torch.allclose(augment_batch(x, geo, torch.Generator().manual_seed(5), 64, antialias=True), shrunk,
                              atol=1e-5)

    def test_blur_shrinks_with_the_output(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """The blur's sigma is in pixels of the crop as given: at half the size it is half as many."""
        torch = pytest.importorskip("torch")
        import wbc.augment as augment

        sigmas: list[float] = []
        real = augment.gaussian_blur
        monkeypatch.setattr(augment, "gaussian_blur", lambda x, s: sigmas.append(s) or real(x, s))
        cfg = augment.AugmentConfig(blur_p=1.0)
        x = torch.rand(4, 3, 32, 32)
        augment.augment_batch(x, cfg, torch.Generator().manual_seed(7))
        augment.augment_batch(x, cfg, torch.Generator().manual_seed(7), 16)
        augment.augment_batch(x, cfg, torch.Generator().manual_seed(7), 16, antialias=True)
        assert sigmas[1] == pytest.approx(sigmas[0] / 2) and sigmas[0] > 0.3
        assert sigmas[2] == pytest.approx(sigmas[1])  # the shrink before the warp does not change the scale

    def test_hed_jitter_is_the_stain_model_per_pixel(self) -> None:
        """The batched jitter equals the Ruifrok-Johnston model written out per pixel: OD = -ln(I),
        stains = OD @ inv(M), each stain scaled and shifted, back through M, I = exp(-OD)."""
        torch = pytest.importorskip("torch")
        from wbc.augment import hed_jitter
        from wbc.pixels import OD_FROM_HED

        gen = torch.Generator().manual_seed(3)
        x = torch.rand(5, 3, 7, 9, generator=gen)
        x[0, :, 0, 0] = 0.0  # below 1/255: clamped there before the log
        alpha, beta = torch.rand(5, 3, generator=gen) + 0.5, torch.rand(5, 3, generator=gen) * 0.2 - 0.1
        m = np.array(OD_FROM_HED)
        od = -np.log(np.clip(x.numpy().astype(np.float64), 1 / 255, None)).transpose(0, 2, 3, 1)  # (N, H, W, 3)
        stains = (od @ np.linalg.inv(m)) * alpha.numpy()[:, None, None, :] + beta.numpy()[:, None, None, :]
        want = np.clip(np.exp(-(stains @ m)), 0, 1).transpose(0, 3, 1, 2)
        np.testing.assert_allclose(hed_jitter(x, alpha, beta).numpy(), want, atol=1e-5)

    def test_config_refuses_ranges_that_break_the_image(self) -> None:
        """A jitter range of 1 or more (a zero gamma gives 0 ** 0 = NaN on black pixels), a share
        outside 0..1 or a zoom range that is not (low > 0, high >= low) is refused when the recipe is
        written, not found as NaNs mid-training."""
        pytest.importorskip("torch")
        from dataclasses import replace

        from wbc.augment import ROBUST

        for bad in ({"gamma": 1.0}, {"hed": -0.1}, {"blur_p": 1.5}, {"scale": (0.0, 1.2)}, {"scale": (1.5, 1.2)}):
            with pytest.raises(ValueError, match=next(iter(bad))):
                replace(ROBUST, **bad)
        assert replace(ROBUST, gamma=0.5, erase_p=1.0).gamma == 0.5

    def test_cutout_erases_one_square_in_the_share_asked(self) -> None:
        """Cutout sets one square patch per picked image to that image's mean colour and leaves the
        rest of it, and the other images, untouched."""
        torch = pytest.importorskip("torch")
        from dataclasses import replace

        from wbc.augment import ROBUST_ERASE, erase_patches

        x = torch.rand(400, 3, 20, 20) * 0.9 + 0.05
        y = erase_patches(x, ROBUST_ERASE, torch.Generator().manual_seed(0))
        changed = (y != x).any(1)  # (N, H, W)
        hit = changed.flatten(1).any(1)
        assert 0.4 < hit.float().mean() < 0.6
        for i in hit.nonzero().flatten()[:20].tolist():
            rows, cols = changed[i].any(1).nonzero().flatten(), changed[i].any(0).nonzero().flatten()
            # One filled box: every pixel between its first and last changed row and column changed.
            assert changed[i, rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1].all()
            assert len(rows) <= 0.4 * 20 + 1 and len(cols) <= 0.4 * 20 + 1
            assert torch.allclose(y[i][:, changed[i]], x[i].mean(dim=(1, 2))[:, None].expand(3, int(changed[i].sum())))
        assert torch.equal(erase_patches(x, replace(ROBUST_ERASE, erase_p=0.0), torch.Generator()), x)
        # The robust-erase recipe is the robust one with patches cut out afterwards: same draws before them.
        from wbc.augment import ROBUST, augment_batch

        a = augment_batch(x[:40], ROBUST, torch.Generator().manual_seed(1))
        b = augment_batch(x[:40], ROBUST_ERASE, torch.Generator().manual_seed(1))
        cut = (a != b).any(1)
        assert cut.flatten(1).any(1).sum() > 5
        for i in range(40):
            assert torch.allclose(b[i][:, cut[i]], a[i].mean(dim=(1, 2))[:, None].expand(3, int(cut[i].sum())))


    def test_zoom_above_one_enlarges_and_shift_moves_both_ways(self) -> None:
        """A zoom of 2 shows the middle half of the crop (enlarged), not the crop shrunk into its mirrored
        surroundings; the shift moves images along both axes, each its own way. Told by two ramps: red rises
        left to right, green top to bottom."""
        torch = pytest.importorskip("torch")
        from wbc.augment import AugmentConfig, augment_batch

        still = dict(rotate=False, brightness=0, contrast=0, channel_gain=0, gamma=0)
        ramp = torch.linspace(0.1, 0.9, 32)
        x = torch.zeros(40, 3, 32, 32)
        x[:, 0], x[:, 1] = ramp.view(1, 1, 32), ramp.view(1, 32, 1)
        x[:, 2] = 0.5
        zoomed = augment_batch(x, AugmentConfig(scale=(2.0, 2.0), shift=0.0, **still), torch.Generator().manual_seed(0))
        span = zoomed[:, 0].amax(dim=(1, 2)) - zoomed[:, 0].amin(dim=(1, 2))
        assert torch.allclose(span, torch.full_like(span, 0.4), atol=0.05)
        moved = augment_batch(x, AugmentConfig(scale=(1.0, 1.0), shift=0.2, **still), torch.Generator().manual_seed(0))
        red, green = moved[:, 0].mean(dim=(1, 2)), moved[:, 1].mean(dim=(1, 2))
        assert red.std() > 0.03 and green.std() > 0.03
        assert abs(float(torch.corrcoef(torch.stack([red, green]))[0, 1])) < 0.6  # drawn apart, not one shift

    def test_stain_and_white_balance_jitter_change_each_images_colour(self) -> None:
        """The stain jitter (each stain's amount, `hed`, and its added density, `hed_bias`) and the per-channel gain
        (white balance) each recolour the images, each image its own way; the gain moves the three channels apart,
        not the image's brightness alone."""
        torch = pytest.importorskip("torch")
        from wbc.augment import AugmentConfig, augment_batch

        still = dict(rotate=False, scale=(1.0, 1.0), shift=0.0, brightness=0, contrast=0, channel_gain=0, gamma=0)
        x = torch.rand(16, 3, 8, 8, generator=torch.Generator().manual_seed(0)) * 0.5 + 0.3
        for change in ({"hed": 0.3}, {"hed": 1e-6, "hed_bias": 0.05}):
            y = augment_batch(x, AugmentConfig(**{**still, **change}), torch.Generator().manual_seed(1))
            shift = (y - x).mean(dim=(2, 3))  # (N, 3)
            assert shift.abs().max() > 0.02, change
            assert (shift - shift.mean(0)).abs().max() > 0.01, change  # not one change for the whole batch
        y = augment_batch(x, AugmentConfig(**{**still, "channel_gain": 0.08}), torch.Generator().manual_seed(1))
        gain = (y / x).mean(dim=(2, 3))  # (N, 3): one gain per image and channel
        assert torch.allclose((y / x).flatten(2), gain[:, :, None], atol=1e-4)
        assert (gain.amax(1) - gain.amin(1)).max() > 0.03 and (gain - 1).abs().max() <= 0.08 + 1e-4

    def test_cutout_lands_anywhere_in_the_image(self) -> None:
        """Cutout's patches fall on every part of the image, its right and bottom edges as well as its left and top."""
        torch = pytest.importorskip("torch")
        from dataclasses import replace

        from wbc.augment import ROBUST_ERASE, erase_patches

        x = torch.rand(200, 3, 20, 30) * 0.9 + 0.05
        changed = (erase_patches(x, replace(ROBUST_ERASE, erase_p=1.0), torch.Generator().manual_seed(0)) != x).any(1)
        assert changed.any(0).all()  # every pixel erased in some image

    def test_overexpose_clips_a_share_of_the_images(self) -> None:
        """About a quarter of the images are brightened x1.15-1.5 and clipped at 1; the rest untouched."""
        from dataclasses import replace

        import torch

        from wbc.augment import ROBUST, ROBUST_OVEREXPOSED, augment_batch, overexpose

        x = torch.rand(800, 3, 8, 8) * 0.3 + 0.6  # 0.6-0.9: x1.15 already clips the brightest
        y = overexpose(x, ROBUST_OVEREXPOSED, torch.Generator().manual_seed(0))
        hit = (y != x).flatten(1).any(1)
        assert 0.2 < hit.float().mean() < 0.3
        assert torch.equal(y[~hit], x[~hit])
        assert y.max() == 1 and (y[hit] == 1).any(dim=(1, 2, 3)).all()
        # Below the clip every pixel of an image has one gain, in range.
        ratio = torch.where(y[hit] < 1, y[hit] / x[hit], torch.nan).flatten(1)
        lo, hi = ratio.nan_to_num(9).min(1).values, ratio.nan_to_num(0).max(1).values
        assert torch.allclose(lo, hi, atol=1e-5) and (lo >= 1.15 - 1e-5).all() and (hi <= 1.5 + 1e-5).all()
        # Off (the default) it is not called, so it draws nothing and ROBUST's batches are as they were.
        import wbc.augment as aug

        def refuse(*_: object) -> torch.Tensor:
            raise AssertionError("overexpose called with overexpose_p = 0")

        real, aug.overexpose = aug.overexpose, refuse
        try:
            a = augment_batch(x[:40], ROBUST, torch.Generator().manual_seed(1))
        finally:
            aug.overexpose = real
        b = augment_batch(x[:40], ROBUST_OVEREXPOSED, torch.Generator().manual_seed(1))
        assert not torch.equal(a, b)
        with pytest.raises(ValueError, match="overexpose"):
            replace(ROBUST, overexpose=(0.9, 1.2))


class TestShifts:
    def test_every_shift_returns_an_image(self) -> None:
        """Each named shift maps RGB uint8 to RGB uint8, and changes the image (all but "clean"): a shift that
        returned its input would report robustness to a change never made."""
        rgb = load_image(EOS)
        for name, f in {**SHIFTS, **EXTRA_SHIFTS}.items():
            out = f(rgb)
            assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3, name
            assert (name == "clean") != (out.shape != rgb.shape or not np.array_equal(out, rgb)), name
        # the blur smooths: less pixel-to-pixel variation than the field as photographed
        out = SHIFTS["blur sigma 1.5 px"](rgb).astype(int)
        assert np.abs(np.diff(out, axis=1)).mean() < 0.8 * np.abs(np.diff(rgb.astype(int), axis=1)).mean()

    def test_each_shift_is_what_its_name_says(self) -> None:
        """Every named shift is the one its name's figures make (a report's row "brightness x0.8" measured
        x0.8, and a JPEG quality 30 row quality 30), and the shifts do what they say: stain(h, e) scales the
        hematoxylin's optical density by h and the eosin's by e, white_balance(r, b) red by r and blue by b, and pad
        puts the field in the middle of its border."""
        import re

        from wbc.robustness import _HED_FROM_OD, Shift, blur, brightness, cell_crop, contrast, jpeg, pad, white_balance

        def made(name: str) -> Shift:
            def factor(of: str) -> float:
                m = re.search(of + r" x([\d.]+)", name)
                return float(m.group(1)) if m else 1.0

            n = float(re.findall(r"\d+(?:\.\d+)?", name)[0])
            if name.startswith("stain"):
                return stain(factor("H"), factor("E"))
            if name.startswith("white balance"):
                return white_balance(factor("R"), factor("B"))
            if name.startswith("framing"):
                return pad(int(n)) if "wider" in name else cell_crop(int(n))
            return {"brightness": brightness, "contrast": contrast, "scale": scale, "blur": blur,
                    "JPEG": lambda q: jpeg(int(q))}[name.split()[0]](n)

        rgb = load_image(EOS)
        for name, shift in {**SHIFTS, **EXTRA_SHIFTS}.items():
            if name != "clean":
                assert np.array_equal(shift(rgb), made(name)(rgb)), name

        def hed(a: np.ndarray) -> np.ndarray:
            return -np.log(np.clip(a.astype(np.float64) / 255, 1 / 255, 1)) @ _HED_FROM_OD

        for h, e in ((1.3, 1.0), (1.0, 0.75)):
            out = stain(h, e)(rgb)
            ok = (rgb > 0).all(-1) & (out > 0).all(-1) & (out < 255).all(-1)  # neither end clipped
            a, b = hed(rgb)[ok], hed(out)[ok]
            slopes = [(b[:, c] @ a[:, c]) / (a[:, c] @ a[:, c]) for c in range(2)]
            assert slopes == [pytest.approx(h, abs=0.02), pytest.approx(e, abs=0.02)]
        flat = np.full((4, 6, 3), 100, np.uint8)
        assert (white_balance(1.25, 0.65)(flat)[0, 0] == (125, 100, 65)).all()
        padded = pad(10)(rgb)
        assert padded.shape == (rgb.shape[0] + 20, rgb.shape[1] + 20, 3) and np.array_equal(padded[10:-10, 10:-10], rgb)

    def test_jpeg_pad_and_crop_make_the_change_named(self) -> None:
        """jpeg(q) is a round trip at quality q (a "JPEG quality 30" row measured quality 30), pad's border is the
        field's median colour (a wider field of background, not a black frame) and cell_crop cuts the square
        around the cell as found (row y, column x: on a 240 x 320 field a swap cuts elsewhere)."""
        import io

        from PIL import Image

        from wbc.imaging import locate_cell
        from wbc.robustness import cell_crop, jpeg, pad

        rgb = load_image(EOS)
        for q in (30, 90):
            buf = io.BytesIO()
            Image.fromarray(rgb).save(buf, format="JPEG", quality=q)
            assert np.array_equal(jpeg(q)(rgb), np.asarray(Image.open(buf).convert("RGB"))), q
        border = pad(10)(rgb)[:10].reshape(-1, 3)
        assert (border == np.median(rgb.reshape(-1, 3), axis=0).astype(np.uint8)).all()
        loc = locate_cell(rgb)
        cy, cx = round(loc.cy), round(loc.cx)
        assert 55 <= cy <= rgb.shape[0] - 55 and 55 <= cx <= rgb.shape[1] - 55 and cy != cx  # inside: no fill
        assert np.array_equal(cell_crop(110)(rgb), rgb[cy - 55 : cy + 55, cx - 55 : cx + 55])

    def test_run_shifts_counts_the_flagged_by_reason_only(self) -> None:
        """flagged_by counts the reasons of the files flagged alone (a passed file's empty reason is no reason),
        and the confusion is 4 x 4 with a class absent from the files, so that folds' confusions add up."""
        from types import SimpleNamespace

        from wbc.imaging import PreprocessSpec

        def look(flagged: bool, reason: str = "") -> SimpleNamespace:
            return SimpleNamespace(is_cell=not flagged, reason=reason, white_balanced=False, overexposed=False,
                                   white_matched=False)

        looks = [look(False), look(True, "out of focus"), look(True, "out of focus"), look(True, "too small")]
        images = [np.full((8, 8, 3), i, np.uint8) for i in range(4)]
        probs = np.eye(4)[[0, 1, 1, 3]]  # each file read right; no file of type 2
        res = run_shifts(lambda x: probs[x[:, 0, 0, 0]], images, np.array([0, 1, 1, 3]), ["a", "b", "c", "d"],
                         PreprocessSpec(), {"clean": SHIFTS["clean"]},
                         lambda img: (img, looks[int(img[0, 0, 0])]))["clean"]
        assert res["flagged"] == 3 and res["flagged_by"] == {"out of focus": 2, "too small": 1}
        assert res["confusion"] == [[1, 0, 0, 0], [0, 2, 0, 0], [0, 0, 0, 0], [0, 0, 0, 1]]

    def test_stain_identity_and_scale(self) -> None:
        """No stain change leaves the image (to rounding); scale 1.5 resizes the field."""
        rgb = load_image(EOS)
        assert np.abs(stain(1.0, 1.0)(rgb).astype(int) - rgb).max() <= 1
        assert scale(1.5)(rgb).shape == (360, 480, 3)

    def test_contrast_leaves_black_fill_black(self) -> None:
        """contrast(k) scales the lit pixels about their mean and keeps the data set's black fill (not
        the camera's) as it was: a flat photo has no grey corners."""
        from wbc.pixels import lit_mask
        from wbc.robustness import contrast

        rgb = load_image(EOS).copy()
        rgb[:30, :40] = 0  # a rotated view's black corner
        lit = lit_mask(rgb)
        assert (~lit).sum() >= 1200
        mean = rgb[lit].astype(np.float32).mean()
        for k in (0.5, 0.7, 1.3):
            out = contrast(k)(rgb)
            assert np.array_equal(out[~lit], rgb[~lit])
            want = np.clip((rgb[lit].astype(np.float32) - mean) * k + mean, 0, 255).astype(np.uint8)
            assert np.array_equal(out[lit], want)
        assert np.array_equal(contrast(1.0)(rgb), rgb)

    def test_run_shifts(self) -> None:
        """run_shifts reports accuracy, cell accuracy and macro-F1 for every shift asked for."""
        from wbc.data import list_split
        from wbc.predict import Predictor

        p = Predictor()
        s = list_split(FIXTURE_IMAGES, "TEST_SIMPLE")
        res = run_shifts(p.predict_probs, [load_image(x.path) for x in s], np.array([x.label for x in s]),
                         [x.cell for x in s], p.spec, {"clean": SHIFTS["clean"], "blur": SHIFTS["blur sigma 1.5 px"]})
        assert set(res) == {"clean", "blur"}
        assert res["clean"]["accuracy"] == 1.0
        assert res["clean"]["cell_accuracy"] == 1.0 and res["clean"]["macro_f1"] == 1.0
        # Figures by hand, from probabilities known in advance: files 1 and 5 wrong (6 of 8 right); file 1's
        # cell "a" pools to right with file 0 (0.65 eosinophil), so 6 of 7 cells; F1 2/3, 0.8, 2/3, 0.8.
        known = np.array([[0.9, 0.1, 0, 0], [0.4, 0.6, 0, 0], [0, 1, 0, 0], [0, 1, 0, 0],
                          [0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 1]])
        y, cells = np.array([0, 0, 1, 1, 2, 2, 3, 3]), ["a", "a", "b", "c", "d", "e", "f", "g"]
        hand = run_shifts(lambda x: known[: len(x)], [load_image(x.path) for x in s], y, cells, p.spec,
                          {"clean": SHIFTS["clean"]})["clean"]
        assert hand["accuracy"] == 0.75 and hand["cell_accuracy"] == pytest.approx(6 / 7)
        assert hand["macro_f1"] == pytest.approx((2 / 3 + 0.8 + 2 / 3 + 0.8) / 4)
        assert hand["confusion"] == [[1, 1, 0, 0], [0, 2, 0, 0], [0, 0, 1, 1], [0, 0, 0, 2]]
        # No monocyte among the files, one file read as one: macro-F1 over the three types with files, as the
        # evaluation's, not with the absent type's 0 averaged in.
        no_mono = np.array([0, 0, 1, 1, 3, 3, 3, 3])
        absent = run_shifts(lambda x: known[: len(x)], [load_image(x.path) for x in s], no_mono, cells, p.spec,
                            {"clean": SHIFTS["clean"]})["clean"]
        assert absent["macro_f1"] == pytest.approx((2 / 3 + 0.8 + 6 / 7) / 3)
        shifted = run_shifts(p.predict_probs, [load_image(x.path) for x in s], np.array([x.label for x in s]),
                             [x.cell for x in s], p.spec, {"dim": EXTRA_SHIFTS["brightness x0.6"]}, p.analyse)
        assert shifted["dim"]["flagged"] == 0 and shifted["dim"]["second_look"] >= 1
        # Each count is of its own mark: here fewer pass on the second look than are seen white-matched.
        seen = [p.analyse(EXTRA_SHIFTS["brightness x0.6"](load_image(x.path)))[1] for x in s]
        assert [shifted["dim"][k] for k in ("second_look", "white_matched", "overexposed")] == [
            sum(sc.white_balanced for sc in seen), sum(sc.white_matched for sc in seen),
            sum(sc.overexposed for sc in seen)]
        assert shifted["dim"]["second_look"] < shifted["dim"]["white_matched"]
