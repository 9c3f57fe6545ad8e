#!/usr/bin/env bash
# Executes every notebook in this folder headless and fails (exit 1) when any cell errors.
#
#   samples/Notebooks/run-notebooks.sh [--write-outputs] [notebook.ipynb ...]
#
# 1. Packs ResNet.MLNet.Scoring, ResNet.Trainer and ResNet.MLNet into artifacts/packages (the notebooks reference them as a user would:
#    #i "nuget: ../../artifacts/packages" + #r "nuget: ResNet.MLNet, 0.1.0").
# 2. Restores into a temporary NUGET_PACKAGES folder, so a re-pack of the same version is never shadowed by an older
#    copy in ~/.nuget/packages (.NET Interactive caches packages by version). The first notebook pays the restore
#    (about 2.4 GB, a minute or two); the others reuse it.
# 3. Runs each notebook with dotnet-repl (a local tool, .config/dotnet-tools.json) at RESNET_NOTEBOOK_SCALE=ci unless
#    the variable is already set (e.g. RESNET_NOTEBOOK_SCALE=full for the committed outputs), and prints its wall time.
#    The executed copies go to $RESNET_NOTEBOOK_OUT (default: a temporary folder); --write-outputs copies them back over
#    the notebooks, with .NET Interactive's package-restore progress messages collapsed to the final one.
# Options: --no-pack skips step 1 (the packages in artifacts/packages are used as they are).
# Environment: RESNET_NOTEBOOK_SCALE (ci|full), RESNET_NOTEBOOK_OUT, RESNET_NUGET_PACKAGES (a cache folder to use and keep
# instead of a fresh temporary one; clear resnet.mlnet/, resnet.mlnet.scoring/ and resnet.trainer/ in it after re-packing).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
write_outputs=0
pack=1
notebooks=()
for arg in "$@"; do
  case "$arg" in
    --write-outputs) write_outputs=1 ;;
    --no-pack) pack=0 ;;
    *.ipynb) notebooks+=("$(cd "$(dirname "$arg")" && pwd)/$(basename "$arg")") ;;
    *) echo "unknown argument: $arg" >&2; exit 2 ;;
  esac
done
if [ ${#notebooks[@]} -eq 0 ]; then
  notebooks=("$here/Quickstart.ipynb" "$here/TransferLearning.ipynb" "$here/Degradation.ipynb" "$here/CifarRecipe.ipynb")
fi
export RESNET_NOTEBOOK_SCALE="${RESNET_NOTEBOOK_SCALE:-ci}"
out="${RESNET_NOTEBOOK_OUT:-$(mktemp -d -t resnet-notebooks-XXXXXX)}"
mkdir -p "$out"

if [ "$pack" = 1 ]; then
  echo "== packing ResNet.MLNet.Scoring, ResNet.Trainer and ResNet.MLNet into $root/artifacts/packages"
  start=$SECONDS
  dotnet pack "$root/src/ResNet.MLNet.Scoring/ResNet.MLNet.Scoring.csproj" -c Release -nologo -v q
  dotnet pack "$root/src/ResNet.Trainer/ResNet.Trainer.csproj" -c Release -nologo -v q
  dotnet pack "$root/src/ResNet.MLNet/ResNet.MLNet.csproj" -c Release -nologo -v q
  echo "   packed in $((SECONDS - start)) s"
fi

# dotnet-repl comes from the user's cache; only the notebooks' own restores go to the temporary folder.
(cd "$root" && dotnet tool restore >/dev/null)
if [ -n "${RESNET_NUGET_PACKAGES:-}" ]; then
  nuget_tmp="$RESNET_NUGET_PACKAGES"
else
  nuget_tmp="$(mktemp -d -t resnet-nuget-XXXXXX)"
  trap 'rm -rf "$nuget_tmp"' EXIT
fi
export NUGET_PACKAGES="$nuget_tmp"
# .NET Interactive remembers the resolved paths of a package request in ~/.packagemanagement/nuget/Cache, keyed by the
# request and not by NUGET_PACKAGES; forget the requests that include this repository's packages, so they resolve
# afresh (the just-packed versions, into the folder above) instead of pointing at an older or deleted copy.
resolution_cache="$HOME/.packagemanagement/nuget/Cache"
if [ -d "$resolution_cache" ]; then
  grep -l -i -E 'resnet\.(mlnet|trainer)' "$resolution_cache"/*.resolvedReferences.paths 2>/dev/null | while read -r entry; do
    rm -f "$entry" "${entry%.resolvedReferences.paths}.csx"
  done || true
fi
# At CI scale, TransferLearning's pretrained network comes from a local mirror (see ../ci-weights.sh).
source "$here/../ci-weights.sh"
export DOTNET_ROLL_FORWARD=Major   # dotnet-repl 0.3.259 targets an older runtime than the SDK here
export DOTNET_CLI_TELEMETRY_OPTOUT=1

failed=0
summary=()
for nb in "${notebooks[@]}"; do
  name="$(basename "$nb" .ipynb)"
  echo "== $name (RESNET_NOTEBOOK_SCALE=$RESNET_NOTEBOOK_SCALE)"
  start=$SECONDS
  # The notebooks resolve ../../artifacts/packages and the sample data from their own folder.
  if (cd "$(dirname "$nb")" && dotnet dotnet-repl --run "$nb" --exit-after-run --output-path "$out/$name.ipynb") > "$out/$name.log" 2>&1; then
    status=ok
  else
    status=FAILED
    failed=1
    tail -n 40 "$out/$name.log" >&2
  fi
  python3 - "$out/$name.ipynb" <<'PY' || true
import json, sys
try:
    nb = json.load(open(sys.argv[1]))
except Exception:
    sys.exit(0)
for i, c in enumerate(nb["cells"]):
    for o in c.get("outputs", []):
        if o.get("output_type") == "error" or (o.get("output_type") == "stream" and o.get("name") == "stderr"):
            text = o.get("evalue") or "".join(o.get("text", ""))
            print(f"   cell {i}: {o.get('ename', 'stderr')}: {text[:600]}")
PY
  seconds=$((SECONDS - start))
  summary+=("$(printf '%-18s %-6s %4d s' "$name" "$status" "$seconds")")
  echo "   $status in $seconds s"
  if [ "$status" = ok ] && [ "$write_outputs" = 1 ]; then
    python3 - "$out/$name.ipynb" "$nb" "$root" <<'PY'
import json, re, sys
# The restore-source list names this checkout's absolute path; committed outputs show it relative to the notebook, and
# temporary folders (the run's package folder, a notebook's scratch folder) as <temp>.
text = open(sys.argv[1]).read().replace(sys.argv[3] + "/artifacts/packages", "../../artifacts/packages")
nb = json.loads(re.sub(r"/tmp/[A-Za-z0-9._-]+", "<temp>", text))
for c in nb["cells"]:
    outs = c.get("outputs", [])
    restore = [o for o in outs if "Installing Packages" in "".join(o.get("data", {}).get("text/html", [])) ]
    c["outputs"] = [o for o in outs if o not in restore]
    # dotnet-repl writes one output per progress tick of a package restore; keep the final "Installed Packages" only.
with open(sys.argv[2], "w", encoding="utf-8") as f:
    json.dump(nb, f, indent=1, ensure_ascii=False)
    f.write("\n")
PY
    echo "   outputs written to $nb"
  fi
done

echo "== notebooks ($RESNET_NOTEBOOK_SCALE scale; executed copies and logs in $out)"
printf '%s\n' "${summary[@]}"
exit $failed
