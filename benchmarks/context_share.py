"""What a training crop shows after the augmentation's warp: real field, field mirrored past the cached
crop's edge, or the flat fill a crop gets where its window leaves the photo. With and without --context.

    python benchmarks/context_share.py [--every 66] [--contexts 0 30] [--draws 4]

Every EVERY-th TRAIN file is located and cropped as training caches it (`train.context_spec`), with a
mask of which crop pixels lie inside the photo. The shipped recipe's warp (`augment_batch`, DRAWS draws
per file) is applied to the crops, and its sampling grid to the masks: a sample past the crop is
mirrored field, a sample inside it on the mask's outside is fill. Shares are of the network's input
pixels. Needs the data set; trains nothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def inside_mask(h: int, w: int, cy: float, cx: float, window: int, size: int) -> np.ndarray:
    """Which pixels of `crop_square`'s window x window crop (resized to size) lie inside an h x w photo:
    float (size, size), 1 inside."""
    from PIL import Image

    top, left = int(round(cy)) - window // 2, int(round(cx)) - window // 2
    ys, xs = np.arange(window) + top, np.arange(window) + left
    inside = ((ys >= 0) & (ys < h))[:, None] & ((xs >= 0) & (xs < w))[None, :]
    return np.asarray(Image.fromarray(inside.astype(np.uint8) * 255).resize((size, size), Image.BILINEAR)) / 255.0


def main() -> int:
    import torch
    import torch.nn.functional as F

    import wbc.augment as augment
    from wbc.cli import whole_number
    from wbc.data import list_split
    from wbc.decode import load_image
    from wbc.folders import find_images_root
    from wbc.imaging import PreprocessSpec, prepare_located
    from wbc.recipe import AUGMENT, WBCNET_PRESET
    from wbc.train import context_spec

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--every", type=whole_number(1), default=66, help="every Nth TRAIN file (default: 66)")
    ap.add_argument("--contexts", type=whole_number(0), nargs="+", default=[0, 30], help="default: 0 30")
    ap.add_argument("--draws", type=whole_number(1), default=4, help="warps per file (default: 4)")
    ap.add_argument("--data", help="data set folder (default: WBC_DATA, else ../shared/data/blood-cells)")
    args = ap.parse_args()

    samples = list_split(find_images_root(args.data), "TRAIN")[:: args.every]
    base = PreprocessSpec()
    cfg = AUGMENT[WBCNET_PRESET["augment"]]
    print(f"{len(samples)} TRAIN files, {args.draws} warps each, augmentation {WBCNET_PRESET['augment']}\n")
    print("| context px | cached crop | real field | mirrored past the crop | flat fill |\n|---|---|---|---|---|")
    for context in args.contexts:
        spec = context_spec(base, context)
        crops, masks = [], []
        for s in samples:
            crop, loc, field = prepare_located(load_image(s.path), spec)  # as training caches it
            crops.append(crop)
            masks.append(inside_mask(*field.shape[:2], loc.cy, loc.cx, spec.window, spec.size))
        x = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float().repeat(args.draws, 1, 1, 1) / 255
        m = torch.from_numpy(np.stack(masks)).float()[:, None].repeat(args.draws, 1, 1, 1)
        grids: list[torch.Tensor] = []
        real_sample = F.grid_sample

        def spy(inp: torch.Tensor, grid: torch.Tensor, *a: object, **kw: object) -> torch.Tensor:
            grids.append(grid)
            return real_sample(inp, grid, *a, **kw)

        augment.F.grid_sample = spy  # the warp's own grid, applied to the masks below
        try:
            augment.augment_batch(x, cfg, torch.Generator().manual_seed(0), base.size, extent=base.size / spec.size)
        finally:
            augment.F.grid_sample = real_sample
        grid = grids[0]
        past = (grid.abs() > 1).any(-1)  # (N, H, W)
        inside = F.grid_sample(m, grid, mode="nearest", padding_mode="border", align_corners=False)[:, 0] > 0.5
        fill = ~past & ~inside
        real = ~past & inside
        print(f"| {context} | {spec.window} px -> {spec.size} px | {100 * real.float().mean():.1f}% "
              f"| {100 * past.float().mean():.1f}% | {100 * fill.float().mean():.1f}% |")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from entry import run_script

    run_script(main)
