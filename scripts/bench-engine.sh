#!/usr/bin/env bash
# The teacher-student engine against a plain scalar loop of the same maths, side by side: the
# quickstart run (`prunelab run configs/quickstart.yaml --threads 1`: training, test set, evaluation,
# files) and `prunelab bench scalar` (training and test error as the obvious per-sample loop, with
# one running sum per dot product and, the stronger baseline, with eight). The three programs run
# alternately ROUNDS times; the minimum of each is printed (wall and user+system CPU seconds), so
# that other load on the machine inflates the figures as little as possible.
#
# Usage: scripts/bench-engine.sh [ROUNDS] (default 5); PRUNELAB=path/to/prunelab to pick a binary.
set -euo pipefail
rounds=${1:-5}
bin=${PRUNELAB:-target/release/prunelab}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
names=(run scalar scalar-unrolled)
cmds=(
  "$bin run configs/quickstart.yaml --threads 1 --out $out/runs --quiet"
  "$bin bench scalar"
  "$bin bench scalar --unrolled-dot"
)
declare -A wall cpu
for r in $(seq "$rounds"); do
  for i in "${!names[@]}"; do
    rm -rf "$out/runs"
    /usr/bin/time -f "%e %U %S" -o "$out/t" ${cmds[$i]} > /dev/null 2>&1
    read -r e u s < "$out/t"
    c=$(echo "$u + $s" | bc)
    n=${names[$i]}
    if [[ -z ${wall[$n]:-} ]] || (( $(echo "$e < ${wall[$n]}" | bc) )); then wall[$n]=$e; fi
    if [[ -z ${cpu[$n]:-} ]] || (( $(echo "$c < ${cpu[$n]}" | bc) )); then cpu[$n]=$c; fi
  done
done
echo "minimum of $rounds rounds (load average at the end: $(cut -d' ' -f1-3 /proc/loadavg))"
for n in "${names[@]}"; do
  printf '%-16s wall %6.2f s   cpu %6.2f s\n' "$n" "${wall[$n]}" "${cpu[$n]}"
done
for base in scalar scalar-unrolled; do
  printf 'run / %-16s wall %.2f×   cpu %.2f×\n' "$base" \
    "$(echo "${wall[run]} / ${wall[$base]}" | bc -l)" "$(echo "${cpu[run]} / ${cpu[$base]}" | bc -l)"
done
