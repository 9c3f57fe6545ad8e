#!/usr/bin/env bash
# Training step and end-to-end epoch of this checkout against an earlier commit, alternating processes (old, new, old,
# new, ...) so both see the same machine load; prints each run's figures and the median of the paired ratios.
# Usage: bench/train/before-after.sh <old-rev> [pairs] [model batch size]   e.g. bench/train/before-after.sh 28f5e46 3
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
old_rev="$1"; pairs="${2:-3}"; model="${3:-resnet20}"; batch="${4:-128}"; size="${5:-32}"
old="$(mktemp -d -t resnet-before-XXXXXX)"
trap 'git -C "$root" worktree remove --force "$old" >/dev/null 2>&1 || true' EXIT
git -C "$root" worktree add -q --detach "$old" "$old_rev"
dotnet build -c Release "$old/bench/train/ResNet.Bench.Train.csproj" -v q -nologo >/dev/null
dotnet build -c Release "$here/ResNet.Bench.Train.csproj" -v q -nologo >/dev/null
echo "date: $(date -u '+%Y-%m-%d %H:%M') UTC; load: $(cut -d' ' -f1-3 /proc/loadavg); old: $(git -C "$old" rev-parse --short HEAD); new: $(git -C "$root" rev-parse --short HEAD)"
args=(--model "$model" --batch "$batch" --size "$size" --threads 2 --steps 16 --warmup 3 --epoch --rounds 3)
step() { grep '"kind":"step"' | head -1 | grep -oE '"images_per_second":[0-9.]+' | cut -d: -f2; }
e2e() { grep -oE 'median [0-9.]+' | tail -1 | cut -d' ' -f2; }
ratios_step=(); ratios_e2e=()
for p in $(seq "$pairs"); do
  o="$(OMP_WAIT_POLICY=PASSIVE "$old/bench/train/bin/Release/net10.0/ResNet.Bench.Train" "${args[@]}")"
  n="$(OMP_WAIT_POLICY=PASSIVE "$here/bin/Release/net10.0/ResNet.Bench.Train" "${args[@]}")"
  so=$(echo "$o" | step); sn=$(echo "$n" | step); eo=$(echo "$o" | e2e); en=$(echo "$n" | e2e)
  echo "pair $p: step old $so img/s, new $sn img/s; end-to-end/bare (paired within the run) old $eo, new $en; load $(cut -d' ' -f1 /proc/loadavg)"
  ratios_step+=("$(awk "BEGIN { print $sn / $so }")"); ratios_e2e+=("$(awk "BEGIN { print $en / $eo }")")
done
source "$here/median.sh"
echo "median of paired ratios new/old: step $(median "${ratios_step[@]}"), end-to-end/bare $(median "${ratios_e2e[@]}")"
