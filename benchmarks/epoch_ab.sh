#!/usr/bin/env bash
# Whole training epochs of an earlier commit against the working tree, in alternation:
#
#     bash benchmarks/epoch_ab.sh REV [ROUNDS]      (e.g. REV = 5926ed9, ROUNDS = 3)
#
# Each round runs `wbc train --seed 0 --all-cells --epochs 2` once with REV's src (a git worktree
# in a temporary folder) and once with this tree's, so a slow spell of a shared machine falls on
# both alike. Prints each run's two epoch times (s) and the median per side. Needs the data set
# and .venv; about a minute a run on 2 cores. EPOCH_AB_ARGS adds options to both sides' command:
# since e36 (cutout, low resolution first) is the default, a REV before it trains another recipe,
# so give EPOCH_AB_ARGS='--augment robust --low-res 0 0' (REV must know both options: commit 68d9df4 or later).
set -euo pipefail
rev=${1:?usage: bash benchmarks/epoch_ab.sh REV [ROUNDS]}
rounds=${2:-3}
root=$(cd "$(dirname "$0")/.." && pwd)
# The worktree lies elsewhere, so the data set's default place (beside the project) is named here.
data=${WBC_DATA:-$root/../shared/data/blood-cells}
tmp=$(mktemp -d)
trap 'git -C "$root" worktree remove --force "$tmp/old" >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT
git -C "$root" worktree add -q --detach "$tmp/old" "$rev"
declare -A times=([old]="" [new]="")
for i in $(seq "$rounds"); do
  for side in old new; do
    src=$root/src
    [ "$side" = old ] && src=$tmp/old/src
    out=$tmp/run-$side-$i
    # PYTHONPATH comes before the editable install, so `wbc` is the side's own src (checked).
    PYTHONPATH=$src "$root/.venv/bin/python" - train --seed 0 --all-cells --epochs 2 --quiet --data "$data" --out "$out" ${EPOCH_AB_ARGS:-} \
      > "$tmp/log" 2>&1 <<PY || { cat "$tmp/log"; exit 1; }
import sys, wbc
assert wbc.__file__.startswith("$src"), wbc.__file__
from wbc.cli import main
sys.exit(main(sys.argv[1:]))
PY
    # By the header's name: newer runs have an input_px column before seconds, older ones do not.
    t=$(tr -d '\r' < "$out/summary.csv" | awk -F, 'NR == 1 {for (i = 1; i <= NF; i++) if ($i == "seconds") c = i; next} {printf "%.1f ", $c}')
    times[$side]+="$t"
    echo "round $i  $side ($([ "$side" = old ] && echo "$rev" || echo "working tree")): $t s"
  done
done
median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print (NR % 2 ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2)}'; }
old=$(echo "${times[old]}" | median)
new=$(echo "${times[new]}" | median)
echo "median epoch: $rev ${old} s, working tree ${new} s: $(awk -v a="$old" -v b="$new" 'BEGIN {printf "%.2f", a / b}')x"
