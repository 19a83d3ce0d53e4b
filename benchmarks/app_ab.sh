#!/usr/bin/env bash
# The app's seconds from upload to a drawn page at an earlier commit against the working tree, in alternation:
#
#     bash benchmarks/app_ab.sh REV [ROUNDS] [SIZES...]      (e.g. REV = 7d09835, ROUNDS = 3, SIZES = 110)
#
# Each round runs this tree's benchmarks/app_latency.py once with REV's src (a git worktree in a temporary
# folder) and once with this tree's, both on this tree's shipped model, so a slow spell of a shared machine
# falls on both alike; then prints the medians per side and their ratio. PYTHON names the interpreter
# (default: the project's .venv).
set -euo pipefail
rev=${1:?usage: bash benchmarks/app_ab.sh REV [ROUNDS] [SIZES...]}
rounds=${2:-3}
shift $(( $# > 1 ? 2 : 1 ))
sizes=${*:-110}
[ "$rounds" -ge 1 ] || { echo "app_ab.sh: ROUNDS must be 1 or more" >&2; exit 2; }
# shellcheck source=benchmarks/ab_lib.sh
source "$(dirname "$0")/ab_lib.sh"
# The data found once, by this tree (WBC_DATA, else beside the project): REV's src, run from its worktree,
# looked for it beside the worktree.
data=$("$python" -c 'from wbc.folders import find_images_root; print(find_images_root())')
for i in $(seq "$rounds"); do
  for side in old new; do
    tree=$(side_tree "$side")
    # shellcheck disable=SC2086
    out=$(PYTHONPATH=$tree/src WBC_MODEL=$root/models/default "$python" "$root/benchmarks/app_latency.py" --runs 1 \
          --sizes $sizes --data "$data" 2>&1) || { echo "$out"; exit 1; }
    echo "$out" | sed "s/^/round $i  $side: /" | grep "image(s):"
    echo "$out" | sed -n "s/^ *\([0-9]*\) image(s): \([0-9.]*\) s.*/$side \1 \2/p" >> "$tmp/all"
  done
done
"$python" - "$tmp/all" "$rev" <<'PY'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
for n in sorted({int(r[1]) for r in rows}):
    med = {s: statistics.median(float(r[2]) for r in rows if r[0] == s and int(r[1]) == n) for s in ("old", "new")}
    print(f"{n} image(s): median {med['old']:.2f} s at {sys.argv[2]}, {med['new']:.2f} s now ({med['old'] / med['new']:.2f}x)")
PY
