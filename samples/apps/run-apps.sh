#!/usr/bin/env bash
# Runs the four notebooks' file-based-app twins (.NET 10 `dotnet run app.cs`) at CI scale and fails (exit 1) when any fails.
#   samples/apps/run-apps.sh [App.cs ...]
# RESNET_NOTEBOOK_SCALE defaults to ci here (set it to full for the notebooks' full runs). Prints each app's wall time,
# build included. The apps build in Release so that, after `dotnet test -c Release`, they reuse the libraries' Release
# builds instead of building them again in Debug.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export RESNET_NOTEBOOK_SCALE="${RESNET_NOTEBOOK_SCALE:-ci}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1
# At CI scale, TransferLearning's pretrained network comes from a local mirror (see ../ci-weights.sh).
source "$here/../ci-weights.sh"
apps=("$@")
if [ ${#apps[@]} -eq 0 ]; then apps=("$here/Quickstart.cs" "$here/TransferLearning.cs" "$here/Degradation.cs" "$here/CifarRecipe.cs"); fi
failed=0
summary=()
total=$SECONDS
for app in "${apps[@]}"; do
  name="$(basename "$app" .cs)"
  echo "== $name (RESNET_NOTEBOOK_SCALE=$RESNET_NOTEBOOK_SCALE)"
  start=$SECONDS
  if dotnet run -c Release "$app"; then status=ok; else status=FAILED; failed=1; fi
  "$here/../../scripts/remove-app-build.sh" "$app"   # 1.3 GB of build output per app
  summary+=("$(printf '%-18s %-6s %4d s' "$name" "$status" "$((SECONDS - start))")")
done
echo "== apps ($RESNET_NOTEBOOK_SCALE scale) in $((SECONDS - total)) s"
printf '%s\n' "${summary[@]}"
exit $failed
