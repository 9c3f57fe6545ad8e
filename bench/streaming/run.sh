#!/usr/bin/env bash
# Streaming-training benchmark (issue 12): fine-tune ResNet-18 at 224, batch 32, for N iterations on a generated folder of
# 640x480 JPEGs, through the ML.NET estimator (StreamingBench fit) and through `resnet train` (the CLI's streaming loader),
# alternating the two so both see the same machine load. Reports the training loop's images/s and the peak RSS
# (/usr/bin/time -v, "Maximum resident set size") of each process. Not a test.
# Usage: bench/streaming/run.sh [images] [pairs] [iterations]   (defaults 20000 2 50; the folder is deleted at the end)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
images="${1:-20000}"
pairs="${2:-2}"
iterations="${3:-50}"
batch=32
work=/tmp/streaming-bench
folder="$work/jpegs"
trap 'rm -rf "$work"' EXIT
dotnet build -c Release "$here/StreamingBench.csproj" -v q -nologo >/dev/null
dotnet build -c Release "$repo/src/ResNet.Cli/ResNet.Cli.csproj" -v q -nologo >/dev/null
bench="$here/bin/Release/net10.0/StreamingBench"
cli="$repo/src/ResNet.Cli/bin/Release/net10.0/resnet"
mkdir -p "$work"
echo "# $(date -u '+%Y-%m-%d %H:%M:%S UTC'), load: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores"
"$bench" generate "$folder" "$images" 10
du -sh "$folder" | sed 's/^/# folder size: /'

peak() { sed -n 's/.*Maximum resident set size (kbytes): //p' "$1"; }
for r in $(seq "$pairs"); do
  cmd=("$bench" fit "$folder" "$iterations" "$batch")
  echo "# pair $r, estimator: $(date -u '+%H:%M:%S'), load $(cut -d' ' -f1-3 /proc/loadavg): ${cmd[*]}"
  /usr/bin/time -v -o "$work/time-est" "${cmd[@]}" > "$work/out-est"
  line="$(grep '^{' "$work/out-est")"
  echo "${line%\}},\"time_max_rss_mb\":$(( $(peak "$work/time-est") / 1024 ))}"

  rm -rf "$work/cli-run"
  cmd=("$cli" train --data "$folder" --arch resnet18 --image-size 224 --batch-size "$batch" --iterations "$iterations" --validation 0 --normalize none --output "$work/cli-run")
  echo "# pair $r, CLI: $(date -u '+%H:%M:%S'), load $(cut -d' ' -f1-3 /proc/loadavg): ${cmd[*]}"
  start=$(date +%s.%N)
  /usr/bin/time -v -o "$work/time-cli" "${cmd[@]}" > "$work/out-cli"
  wall=$(echo "$(date +%s.%N) - $start" | bc)
  ips="$(sed -n 's/.*  \([0-9.]*\) img\/s.*/\1/p' "$work/out-cli" | tail -1)"
  # The same figure as the estimator's: iterations x batch over the epoch's seconds (metrics.json), beside the printed one.
  secs="$(python3 -c 'import json,sys; e=json.load(open(sys.argv[1]))["epochs"][0]; print(next(v for k,v in e.items() if k.lower()=="seconds"))' "$work/cli-run/metrics.json")"
  echo "{\"impl\":\"resnet train\",\"epoch_seconds\":$(printf '%.1f' "$secs"),\"images_per_second\":$(echo "scale=2; $iterations * $batch / $secs" | bc),\"progress_images_per_second\":$ips,\"wall_seconds\":$(printf '%.1f' "$wall"),\"time_max_rss_mb\":$(( $(peak "$work/time-cli") / 1024 ))}"
done
echo "# done $(date -u '+%H:%M:%S UTC'), load: $(cut -d' ' -f1-3 /proc/loadavg)"
