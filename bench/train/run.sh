#!/usr/bin/env bash
# Training-throughput benchmark: ResNet.Trainer (TorchSharp) beside PyTorch 1.13 eager, same models, batch,
# thread count, SGD step and OpenMP wait policy, measured in one run and alternating so both see the same
# machine load. Each figure is the best of $repeats runs (the machine is shared: the best is the least disturbed).
# Usage: bench/train/run.sh [threads] [steps] [repeats]   (not part of the tests; ~10 minutes on 2 cores)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
threads="${1:-2}"
steps="${2:-10}"
repeats="${3:-2}"
dotnet build -c Release "$here/ResNet.Bench.Train.csproj" -v q -nologo >/dev/null
ours="$here/bin/Release/net10.0/ResNet.Bench.Train"
py=/usr/bin/python3
out="$(mktemp)"
echo "date: $(date -u '+%Y-%m-%d %H:%M') UTC; load: $(cut -d' ' -f1-3 /proc/loadavg); commit: $(git -C "$here" rev-parse --short HEAD); $0 $*; CONFIGS=${CONFIGS:-} LAYOUTS=${LAYOUTS:-} PRECISIONS=${PRECISIONS:-} EXTRAS=${EXTRAS:-}"
run() { "$@" | tee -a "$out"; }
# CONFIGS="resnet20 128 32;resnet56 128 32" limits the models (model batch size, separated by ';').
if [ -n "${CONFIGS:-}" ]; then IFS=';' read -ra cfgs <<< "$CONFIGS"; else cfgs=("resnet20 128 32" "resnet56 128 32" "resnet18 32 224"); fi
# LAYOUTS="blocked nchw" also runs our fp32 step with every activation in NCHW (the step before the blocked layout).
# PRECISIONS="fp32 bf16" also runs our step in the trainer's bf16 mode; EXTRAS=0 leaves out ResNet-20's end-to-end epoch,
# ACTIVE wait policy and torch.optim.SGD runs. PyTorch runs in both layouts (NCHW, channels-last) for every model.
precisions="${PRECISIONS:-fp32}"
layouts="${LAYOUTS:-blocked}"
extras="${EXTRAS:-1}"
for r in $(seq "$repeats"); do
  for cfg in "${cfgs[@]}"; do
    set -- $cfg
    extra=""; s="$steps"
    [ "$1" = resnet20 ] && [ "$extras" = 1 ] && extra="--epoch"
    [ "$1" != resnet20 ] && s=$(( steps / 2 > 3 ? steps / 2 : 3 ))
    # ResNet.Trainer sets OMP_WAIT_POLICY=PASSIVE unless the user set it; give PyTorch the same.
    for prec in $precisions; do
      for layout in $layouts; do
        [ "$prec" != fp32 ] && [ "$layout" != blocked ] && continue # bf16 runs NCHW either way
        e="$extra"; [ "$layout" != blocked ] && e="" # the end-to-end epoch in the default layout only
        OMP_WAIT_POLICY=PASSIVE run "$ours" --model "$1" --batch "$2" --size "$3" --threads "$threads" --steps "$s" --warmup 3 --precision "$prec" --layout "$layout" $e
      done
    done
    OMP_WAIT_POLICY=PASSIVE run "$py" "$here/pytorch_peer.py" --model "$1" --batch "$2" --size "$3" --threads "$threads" --steps "$s" --warmup 3 $extra
    OMP_WAIT_POLICY=PASSIVE run "$py" "$here/pytorch_peer.py" --model "$1" --batch "$2" --size "$3" --threads "$threads" --steps "$s" --warmup 3 --channels-last
    # PyTorch in the blocked layout too (x.to_mkldnn(), as ResNet.Trainer's default): not one of the issue's two layouts, shown beside them.
    OMP_WAIT_POLICY=PASSIVE run "$py" "$here/pytorch_peer.py" --model "$1" --batch "$2" --size "$3" --threads "$threads" --steps "$s" --warmup 3 --mkldnn
    # With our bf16 step, PyTorch's CPU autocast to bfloat16 as well (its peer; the issue's criterion stays its faster fp32 layout).
    case " $precisions " in *" bf16 "*)
      OMP_WAIT_POLICY=PASSIVE run "$py" "$here/pytorch_peer.py" --model "$1" --batch "$2" --size "$3" --threads "$threads" --steps "$s" --warmup 3 --bf16 ;;
    esac
    if [ "$1" = resnet20 ] && [ "$extras" = 1 ]; then
      OMP_WAIT_POLICY=ACTIVE run "$ours" --model "$1" --batch "$2" --size "$3" --threads "$threads" --steps "$s" --warmup 3 --epoch
      OMP_WAIT_POLICY=ACTIVE run "$py" "$here/pytorch_peer.py" --model "$1" --batch "$2" --size "$3" --threads "$threads" --steps "$s" --warmup 3 --epoch
      OMP_WAIT_POLICY=PASSIVE run "$ours" --model "$1" --batch "$2" --size "$3" --threads "$threads" --steps "$s" --warmup 3 --optimizer torchsharp
    fi
  done
done
echo
"$py" - "$out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
def key(r):
    variant = "channels-last" if r.get("channels_last") else "blocked (mkldnn)" if r.get("mkldnn") else "autocast bf16" if r["impl"].startswith("PyTorch") and r.get("precision") == "bf16" else r["optimizer"] + ("" if r.get("precision", "fp32") == "fp32" else " " + r["precision"]) + (" nchw" if r.get("layout") == "nchw" else "")
    return (r["model"], r["batch"], r["size"], r["kind"], r["omp_wait_policy"], r["impl"], variant)
best, runs = {}, {}
for r in rows:
    runs.setdefault(key(r), []).append(r["images_per_second"])
    k = key(r)
    if k not in best or r["images_per_second"] > best[k]["images_per_second"]:
        best[k] = r
def median(v):
    v = sorted(v)
    return v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2
print(f"{'model':9} {'batch':>5} {'size':>4} {'measure':11} {'OMP wait':8} {'implementation':34} {'variant':24} {'img/s':>8} {'vs PyTorch':>10} {'paired':>7} {'vs best':>7} {'vs blk':>7} {'vs bf16':>7} {'img/CPU-s':>9} {'vs PyTorch':>10} {'peak RSS MB':>11}")
for k, r in best.items():
    peerkey = next((q for q in best if q[5].startswith("PyTorch") and q[6] == "torch.optim.SGD" and q[:5] == k[:5]), None)
    clkey = next((q for q in best if q[5].startswith("PyTorch") and q[6] == "channels-last" and q[:3] == k[:3] and q[3] == "step" and q[4] == k[4]), None)
    blkkey = next((q for q in best if q[5].startswith("PyTorch") and q[6] == "blocked (mkldnn)" and q[:3] == k[:3] and q[3] == "step" and q[4] == k[4]), None)
    peer = best[peerkey] if peerkey else None
    # "paired": the median over repeats of (this run / the PyTorch run right after it), steadier than best-of on a shared machine.
    paired = median([a / b for a, b in zip(runs[k], runs[peerkey])]) if peerkey else float("nan")
    # "vs best": paired against PyTorch's faster layout in the same repeat (NCHW or channels-last, whichever won that time).
    bestof = median([a / max(b, c) for a, b, c in zip(runs[k], runs[peerkey], runs[clkey])]) if peerkey and clkey and k[3] == "step" else float("nan")
    # "vs blk": paired against PyTorch with its activations in the blocked layout too (--mkldnn), in the same repeat.
    vsblk = median([a / b for a, b in zip(runs[k], runs[blkkey])]) if blkkey and k[3] == "step" else float("nan")
    # "vs bf16": paired against PyTorch's CPU autocast to bfloat16 (--bf16, run when PRECISIONS has bf16), in the same repeat.
    bf16key = next((q for q in best if q[5].startswith("PyTorch") and q[6] == "autocast bf16" and q[:3] == k[:3] and q[3] == "step" and q[4] == k[4]), None)
    vsbf16 = median([a / b for a, b in zip(runs[k], runs[bf16key])]) if bf16key and k[3] == "step" else float("nan")
    ratio = r["images_per_second"] / peer["images_per_second"] if peer else float("nan")
    cpu = r.get("images_per_cpu_second") or float("nan")
    cpu_ratio = cpu / peer["images_per_cpu_second"] if peer and peer.get("images_per_cpu_second") else float("nan")
    print(f"{k[0]:9} {k[1]:>5} {k[2]:>4} {k[3]:11} {k[4][:8]:8} {k[5]:34} {k[6]:24} {r['images_per_second']:>8.1f} {ratio:>9.2f}x {paired:>6.2f}x {bestof:>6.2f}x {vsblk:>6.2f}x {vsbf16:>6.2f}x {cpu:>9.1f} {cpu_ratio:>9.2f}x {r['peak_rss_mb']:>11}")
for line in open(sys.argv[1]):
    if line.startswith("# ") and "end to end" in line:
        print(line.rstrip())
PY
rm -f "$out"
