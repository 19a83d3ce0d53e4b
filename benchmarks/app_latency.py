"""Seconds from upload to result on the app's page, for 1, 50 and 110 images, in a real browser.

    python benchmarks/app_latency.py [--data PATH] [--runs 3] [--sizes 1 50 110]

Starts `wbc app` (the `wbc` that Python imports: PYTHONPATH picks a tree, as benchmarks/app_ab.sh does) on a
free port, drives Debian's chromium with Playwright, uploads the first N of TEST images taken at an even step
(the step that spreads the largest size over the split) and times until
the first result (one image) or the review table's download (several) is on the page and the page has stopped
running.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def main() -> int:
    from playwright.sync_api import sync_playwright

    from test_e2e import CHROMIUM, free_port
    from wbc.data import list_split
    try:
        from wbc.folders import find_images_root
    except ImportError:  # an earlier commit's src (the old side of app_ab.sh): finding the images was in wbc.data
        from wbc.data import find_images_root

    from wbc.cli import whole_number

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, help="data set folder (default: WBC_DATA, else ../shared/data/blood-cells)")
    ap.add_argument("--runs", type=whole_number(1), default=3)
    ap.add_argument("--sizes", type=whole_number(1), nargs="+", default=[1, 50, 110])
    args = ap.parse_args()
    every = [s.path for s in list_split(find_images_root(args.data), "TEST")]
    files = every[:: max(1, len(every) // max(args.sizes))][: max(args.sizes)]
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "wbc.cli", "app", "--port", str(port), "--address", "127.0.0.1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{url}/_stcore/health", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                        args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(120_000)
            results = {}
            for n in args.sizes:
                times = []
                for _ in range(args.runs):
                    page.goto(url)
                    page.get_by_text("Upload one or more").wait_for()
                    t = time.perf_counter()
                    page.locator('input[type="file"]').set_input_files([str(f) for f in files[:n]])
                    if n == 1:  # the result's metric (a caption under the upload box says "confidence" too)
                        page.get_by_test_id("stMetricLabel").get_by_text("Confidence", exact=True).wait_for()
                    else:
                        page.get_by_text("Download the table (CSV)").wait_for()
                    # Streamlit's "Running..." widget: gone when the script and its drawing are done.
                    page.wait_for_function("() => !document.querySelector('[data-testid=stStatusWidget]')")
                    times.append(time.perf_counter() - t)
                results[n] = statistics.median(times)
                print(f"{n:3d} image(s): {results[n]:.2f} s from upload to result (median of {args.runs})")
            most = max(args.sizes)
            if 1 in results and most > 1:
                print(f"per image at {most}: {results[most] / most * 1000:.0f} ms; {most} images take "
                      f"{results[most] / results[1]:.1f}x the time of one")
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from entry import run_script

    run_script(main)
