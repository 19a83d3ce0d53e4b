#!/usr/bin/env bash
# `wbc predict`'s latency at an earlier commit against the working tree, in alternation:
#
#     bash benchmarks/predict_ab.sh REV [ROUNDS] [RUNS]      (e.g. REV = c5adc6c, ROUNDS = 6, RUNS = 300)
#
# Each round runs `benchmarks/predict_latency.py --runs RUNS` once with REV's src and benchmarks (a
# git worktree in a temporary folder) and once with this tree's, both on this tree's shipped model,
# so a slow spell of a shared machine falls on both alike. Prints each run's card path (its views
# and white matching) and one view, then the medians per side and their ratio. PYTHON names the
# interpreter (default: the project's .venv).
set -euo pipefail
rev=${1:?usage: bash benchmarks/predict_ab.sh REV [ROUNDS] [RUNS]}
rounds=${2:-6}
runs=${3:-300}
# shellcheck source=benchmarks/ab_lib.sh
source "$(dirname "$0")/ab_lib.sh"
for i in $(seq "$rounds"); do
  for side in old new; do
    tree=$(side_tree "$side")
    out=$(PYTHONPATH=$tree/src "$python" "$tree/benchmarks/predict_latency.py" \
          --model "$root/models/default" --runs "$runs" 2>&1) || { echo "$out"; exit 1; }
    card=$(echo "$out" | sed -n "s/.*(the card's): \([0-9.]*\) ms.*/\1/p")
    one=$(echo "$out" | sed -n "s/^1 view(s): \([0-9.]*\) ms.*/\1/p")
    [ -n "$card" ] && [ -n "$one" ] || { echo "$out"; echo "predict_ab.sh: no timings in predict_latency.py's output above" >&2; exit 1; }
    echo "round $i  $side ($([ "$side" = old ] && echo "$rev" || echo "working tree")): card's path $card ms, one view $one ms"
    echo "$side $card $one" >> "$tmp/all"
  done
done
"$python" - "$tmp/all" <<'PY'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
med = {(s, k): statistics.median(float(r[1 + k]) for r in rows if r[0] == s) for s in ("old", "new") for k in (0, 1)}
for k, name in ((0, "card's path"), (1, "one view")):
    print(f"{name}: median {med['old', k]:.2f} ms before, {med['new', k]:.2f} ms now ({med['old', k] / med['new', k]:.2f}x)")
PY
