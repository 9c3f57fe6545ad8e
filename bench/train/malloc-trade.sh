#!/usr/bin/env bash
# glibc malloc settings against step speed and peak RSS: our training step under each setting, each run followed by
# PyTorch 1.13's NCHW step (its own allocator settings untouched), so every setting gets a paired ratio from the same
# minutes of machine load. ResNet.Trainer applies its own setting (Native/GlibcAllocator: blocks up to 32 MiB from the
# heap, no trimming during training, 64 MiB top pad) unless a MALLOC_* variable or a glibc.malloc tunable is set; the
# other rows set the variables, and "glibc defaults" sets a harmless tunable so that glibc's own dynamic threshold stays.
# Usage: bench/train/malloc-trade.sh [pairs=3] [model=resnet56] [batch=128] [size=32] [steps=8]   (not part of the tests)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
pairs="${1:-3}"; model="${2:-resnet56}"; batch="${3:-128}"; size="${4:-32}"; steps="${5:-8}"
dotnet build -c Release "$here/ResNet.Bench.Train.csproj" -v q -nologo >/dev/null
ours="$(mktemp -d -t resnet-bench-XXXXXX)"
trap 'rm -rf "$ours"' EXIT
cp -r "$here/bin/Release/net10.0/." "$ours/"   # a copy, so that a build during the run cannot change the program
py=/usr/bin/python3
echo "date: $(date -u '+%Y-%m-%d %H:%M') UTC; load: $(cut -d' ' -f1-3 /proc/loadavg); commit: $(git -C "$here" rev-parse --short HEAD); $0 $*"
# name|environment (empty: ResNet.Trainer's own setting)
settings=(
  "glibc defaults (dynamic mmap threshold, trim at 2x it)|GLIBC_TUNABLES=glibc.malloc.perturb=0"
  "mmap 4 MiB, trim 8 MiB, no top pad|MALLOC_MMAP_THRESHOLD_=4194304 MALLOC_TRIM_THRESHOLD_=8388608 MALLOC_TOP_PAD_=0"
  "mmap 32 MiB, trim 64 MiB, top pad 64 MiB|MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=67108864 MALLOC_TOP_PAD_=67108864"
  "mmap 32 MiB, trim 512 MiB, top pad 64 MiB|MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=536870912 MALLOC_TOP_PAD_=67108864"
  "ours: mmap 32 MiB, no trim, top pad 64 MiB|"
)
args=(--model "$model" --batch "$batch" --size "$size" --threads 2 --steps "$steps" --warmup 3)
field() { grep -oE "\"$1\": ?[0-9.]+" | head -1 | grep -oE '[0-9.]+$'; }
results="$(mktemp)"
for p in $(seq "$pairs"); do
  for s in "${settings[@]}"; do
    name="${s%%|*}"; vars="${s#*|}"
    o="$(env OMP_WAIT_POLICY=PASSIVE $vars "$ours/ResNet.Bench.Train" "${args[@]}" | grep '"kind":"step"')"
    t="$(OMP_WAIT_POLICY=PASSIVE "$py" "$here/pytorch_peer.py" "${args[@]}" | grep '"kind": "step"')"
    line="$name|$(echo "$o" | field images_per_second)|$(echo "$o" | field peak_rss_mb)|$(echo "$o" | field page_faults_per_step)|$(echo "$t" | field images_per_second)|$(echo "$t" | field peak_rss_mb)"
    echo "pair $p: $line; load $(cut -d' ' -f1 /proc/loadavg)"
    echo "$line" >> "$results"
  done
done
echo
"$py" - "$results" "$model" "$batch" <<'PY'
import sys
rows = [l.rstrip("\n").split("|") for l in open(sys.argv[1]) if l.strip()]
order, by = [], {}
for name, ips, rss, faults, pips, prss in rows:
    if name not in by: order.append(name); by[name] = []
    by[name].append((float(ips), float(rss), float(faults), float(pips), float(prss)))
med = lambda v: sorted(v)[len(v) // 2] if len(v) % 2 else sum(sorted(v)[len(v) // 2 - 1:len(v) // 2 + 1]) / 2
print(f"{sys.argv[2]}, batch {sys.argv[3]}, 2 threads; medians over {len(by[order[0]])} pairs")
print(f"| malloc setting | ours img/s | PyTorch img/s | paired ratio | ours peak RSS MB | PyTorch peak RSS MB | RSS ratio | page faults/step |")
print(f"|---|---|---|---|---|---|---|---|")
for n in order:
    r = by[n]
    print(f"| {n} | {med([x[0] for x in r]):.1f} | {med([x[3] for x in r]):.1f} | {med([x[0] / x[3] for x in r]):.2f}x | {med([x[1] for x in r]):.0f} | {med([x[4] for x in r]):.0f} | {med([x[1] / x[4] for x in r]):.2f}x | {med([x[2] for x in r]):.0f} |")
PY
rm -f "$results"
