#!/usr/bin/env bash
# Removes the build folder of .NET 10 file-based apps (`dotnet run app.cs`), which the SDK keeps under
# ~/.local/share/dotnet/runfile/<name>-<hash>: about 1.3 GB each for the samples here, as every platform's libtorch is
# copied next to the app. The folder holds every configuration's build. The CI scripts call this after each app, so a run
# does not keep 6-7 GB of builds it has finished with; the next `dotnet run` of the app builds it again.
#   scripts/remove-app-build.sh app.cs ...
set -euo pipefail
for app in "$@"; do
  dir="$(dotnet build "$app" --getProperty:ArtifactsPath 2>/dev/null | tail -n 1 || true)"
  case "$dir" in
    */dotnet/runfile/*) rm -rf "$dir" ;;
    *) echo "remove-app-build: no build folder found for $app (got '$dir')" >&2; exit 1 ;;
  esac
done
