#!/usr/bin/env bash
# The degradation experiment's default setting (DegradationOptions) in C# (`resnet experiment degradation`) and in the
# PyTorch 1.13 peer (pytorch_peer.py, settings read from the C# side's --show-settings), one run at a time, each with
# all cores. Writes results/<side>-seed<N>.csv and .log, with date, load, commit and peak RSS in the log.
# Usage: bench/degradation/run.sh [seed ...]   (default: 1 2; about 20 minutes per run on 2 cores)
# Environment: SIDES="csharp pytorch" picks the sides; THREADS (default: all cores); NO_BUILD=1 uses the tool as built;
# NOTE="..." is written into each log's first line (e.g. what else ran on the machine).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
seeds=("$@"); [ ${#seeds[@]} -gt 0 ] || seeds=(1 2)
sides="${SIDES:-csharp pytorch}"
threads="${THREADS:-$(nproc)}"
[ -n "${NO_BUILD:-}" ] || dotnet build -c Release "$root/src/ResNet.Cli" -v q -nologo >/dev/null
# A copy of the tool, so rebuilding the repository while a run goes on cannot replace its files under it.
cli_dir="$(mktemp -d -t resnet-degradation-cli-XXXXXX)"
cp -r "$root/src/ResNet.Cli/bin/Release/net10.0/." "$cli_dir"
trap 'rm -rf "$cli_dir"' EXIT
mkdir -p "$here/results"
for seed in "${seeds[@]}"; do
  for side in $sides; do
    log="$here/results/$side-seed$seed.log"
    work="$(mktemp -d -t resnet-degradation-XXXXXX)"
    {
      echo "date: $(date -u '+%Y-%m-%d %H:%M') UTC; load: $(cut -d' ' -f1-3 /proc/loadavg); commit: $(git -C "$root" describe --always --dirty); $(nproc) cores, $threads threads; $0 $seed (side $side)${NOTE:+; $NOTE}"
      case "$side" in
        csharp) /usr/bin/time -f 'wall %e s, peak RSS %M KB' "$cli_dir/resnet" experiment degradation --seed "$seed" --threads "$threads" --output "$work" ;;
        pytorch) settings="$("$cli_dir/resnet" experiment degradation --seed "$seed" --show-settings)"
                 echo "settings: $settings"
                 /usr/bin/time -f 'wall %e s, peak RSS %M KB' /usr/bin/python3 "$here/pytorch_peer.py" --settings "$settings" --threads "$threads" --output "$work" ;;
        *) echo "unknown side $side (csharp or pytorch)" >&2; exit 2 ;;
      esac
      echo "end: $(date -u '+%Y-%m-%d %H:%M') UTC; load: $(cut -d' ' -f1-3 /proc/loadavg)"
    } 2>&1 | tee "$log"
    cp "$work/degradation.csv" "$here/results/$side-seed$seed.csv"
    rm -rf "$work"
  done
done
