#!/usr/bin/env bash
# bfloat16 against float32 in the 94% setting's own loop (Fashion-MNIST, ResNet-20, 28x28 gray, batch 128): one full
# epoch of 60,000 images through the trainer (loader, EMA of weights, the per-epoch test pass), and the bare step on a
# fixed 28x28 gray batch. The two precisions alternate (fp32 first in odd pairs, bf16 first in even ones), so both see the
# same load; prints each run and the median of the paired ratios bf16 / fp32.
# Usage: bench/train/bf16-epoch.sh [pairs]   (about 4 minutes a pair on 2 cores)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
pairs="${1:-3}"
dotnet build -c Release "$here/ResNet.Bench.Train.csproj" -v q -nologo >/dev/null
bench="$here/bin/Release/net10.0/ResNet.Bench.Train"
export OMP_WAIT_POLICY=PASSIVE
echo "# date: $(date -u '+%Y-%m-%d %H:%M') UTC; load: $(cut -d' ' -f1-3 /proc/loadavg); commit: $(git -C "$root" rev-parse --short HEAD)"
echo "# bench/train/bf16-epoch.sh $pairs"
epoch_args=(--tta --model resnet20 --epochs 1 --ema 0.999 --weight-decay 1e-4 --padding 0 --threads 2)
step_args=(--model resnet20 --size 28 --channels 1 --batch 128 --steps 40 --warmup 5 --threads 2)
# One epoch: seconds (History, incl. the test pass) from the "final test accuracy ... after N s" line; a step: img/s.
epoch_seconds() { "$bench" "${epoch_args[@]}" --precision "$1" | grep -oE 'after [0-9]+ s' | grep -oE '[0-9]+'; }
step_rate() { "$bench" "${step_args[@]}" --precision "$1" | grep '"kind":"step"' | grep -oE '"images_per_second":[0-9.]+' | cut -d: -f2; }
source "$here/median.sh"
epoch_ratios=(); step_ratios=()
for p in $(seq "$pairs"); do
  if [ $((p % 2)) -eq 1 ]; then order=(fp32 bf16); else order=(bf16 fp32); fi
  declare -A e=() s=()
  for prec in "${order[@]}"; do s[$prec]=$(step_rate "$prec"); done
  for prec in "${order[@]}"; do e[$prec]=$(epoch_seconds "$prec"); done
  step_ratios+=("$(awk "BEGIN { print ${s[bf16]} / ${s[fp32]} }")")
  epoch_ratios+=("$(awk "BEGIN { print ${e[fp32]} / ${e[bf16]} }")")
  echo "pair $p (${order[*]}): step fp32 ${s[fp32]} img/s, bf16 ${s[bf16]} img/s (x${step_ratios[-1]}); epoch fp32 ${e[fp32]} s, bf16 ${e[bf16]} s (x${epoch_ratios[-1]}); load $(cut -d' ' -f1 /proc/loadavg)"
done
echo "median of paired speed-ups bf16 / fp32: bare step $(median "${step_ratios[@]}"), whole epoch $(median "${epoch_ratios[@]}")"
