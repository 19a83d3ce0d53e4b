# Shared by the A/B scripts (predict_ab.sh, app_ab.sh), sourced once `rev` is set: REV's tree in a temporary
# git worktree, removed on exit, and which tree each side runs. Sets root, python (PYTHON, default the
# project's .venv) and tmp.
root=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-$root/.venv/bin/python}
tmp=$(mktemp -d)
trap 'git -C "$root" worktree remove --force "$tmp/old" >/dev/null 2>&1 || true; git -C "$root" worktree prune; rm -rf "$tmp"' EXIT
git -C "$root" worktree add -q --detach "$tmp/old" "$rev"

# The tree of side "old" (REV's worktree) or "new" (this one). PYTHONPATH comes before the editable install,
# so `wbc` (and an app it starts) is that tree's own src: checked here, the script stopping where it is not.
side_tree() {
  local tree=$root
  [ "$1" = old ] && tree=$tmp/old
  # `|| exit 1`: in the caller's $( ) set -e is off, and the check's failure went on with the wrong tree.
  PYTHONPATH=$tree/src "$python" -c 'import sys, wbc; assert wbc.__file__.startswith(sys.argv[1]), wbc.__file__' \
    "$tree/src" >&2 || exit 1
  echo "$tree"
}
