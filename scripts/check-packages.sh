#!/usr/bin/env bash
# Checks the packages as users get them, from a clean pack of this repository:
#  1. every .nupkg (libraries and each platform's `resnet` tool package) is at most 250 MB, the limit of a public feed;
#  2. the tool installs from the local package folder into a temporary tool path and `resnet demo --epochs 1` runs from an
#     empty folder (the embedded dataset travels in the package);
#  3. a consumer app outside the repository (samples/ScoringApp: only ResNet.MLNet.Scoring + Microsoft.ML.OnnxRuntime) loads
#     a model zip saved by a training pipeline and scores it, without libtorch; its framework-dependent linux-x64 publish
#     is at most 150 MB.
# Usage: scripts/check-packages.sh   (about 5 minutes on 2 cores; CI runs it after the tests)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="$(mktemp -d -t resnet-packages-XXXXXX)"
trap 'rm -rf "$work"' EXIT
pkgs="$work/packages"
limit_pkg=$((250 * 1024 * 1024))
limit_app=$((150 * 1024 * 1024))
export NUGET_PACKAGES="$work/nuget"   # a fresh cache: the just-packed 0.1.0 is never shadowed by an older copy
mkdir -p "$NUGET_PACKAGES"
# Everything else comes from the user's cache, as a warm machine would have it.
cat > "$work/nuget.config" <<XML
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <packageSources>
    <clear />
    <add key="local" value="$pkgs" />
    <add key="user-cache" value="$HOME/.nuget/packages" />
    <add key="nuget.org" value="https://api.nuget.org/v3/index.json" />
  </packageSources>
</configuration>
XML

echo "== pack"
for p in ResNet.MLNet.Scoring ResNet.Trainer ResNet.MLNet ResNet.Cli; do
  NUGET_PACKAGES="$HOME/.nuget/packages" dotnet pack "$root/src/$p/$p.csproj" -c Release -nologo -v q -o "$pkgs"
done

echo "== package sizes (limit 250 MB)"
fail=0
for f in "$pkgs"/*.nupkg; do
  size=$(stat -c %s "$f")
  printf '  %-45s %8.1f MB\n' "$(basename "$f")" "$(awk "BEGIN { print $size / 1048576 }")"
  if [ "$size" -gt "$limit_pkg" ]; then echo "  FAIL: $(basename "$f") is over 250 MB"; fail=1; fi
done
ls "$pkgs"/resnet.linux-x64.*.nupkg >/dev/null

echo "== tool: install from the local folder, run 'resnet demo --epochs 1' in an empty folder"
dotnet tool install resnet --version 0.1.0 --tool-path "$work/tools" --configfile "$work/nuget.config" >/dev/null
mkdir -p "$work/empty" && cd "$work/empty"
"$work/tools/resnet" demo --epochs 1 --output demo-model | tee "$work/demo.log"
test -s demo-model/model.onnx || { echo "FAIL: resnet demo wrote no model.onnx"; fail=1; }
grep -q "accuracy" "$work/demo.log" || { echo "FAIL: resnet demo printed no accuracy"; fail=1; }

echo "== consumer app: a model zip from a training pipeline, scored by an app with only the scoring package"
NUGET_PACKAGES="$HOME/.nuget/packages" dotnet run "$root/samples/ScoringApp/make-model.cs" -- "$work/model.zip"
"$root/scripts/remove-app-build.sh" "$root/samples/ScoringApp/make-model.cs"
mkdir -p "$work/app" && cp "$root/samples/ScoringApp/ScoringApp.csproj" "$root/samples/ScoringApp/Program.cs" "$work/app/"
cp "$work/nuget.config" "$work/app/"
(cd "$work/app" && dotnet publish -c Release -r linux-x64 --self-contained false -o "$work/app/publish" -nologo -v q)
if find "$work/app/publish" -iname '*torch*' | grep -q .; then echo "FAIL: the scoring app's publish output holds TorchSharp/libtorch files"; fail=1; fi
app_size=$(du -sb "$work/app/publish" | cut -f1)
printf '  publish output: %.1f MB (limit 150 MB)\n' "$(awk "BEGIN { print $app_size / 1048576 }")"
if [ "$app_size" -gt "$limit_app" ]; then echo "FAIL: the scoring app's publish output is over 150 MB"; fail=1; fi
"$work/app/publish/ScoringApp" "$work/model.zip" "$root/samples/data/fashion-mnist-small/test" | tee "$work/app.log"
grep -q "^images: 300$" "$work/app.log" || { echo "FAIL: the scoring app did not score the 300 test images"; fail=1; }
grep -q "^libtorch loaded: False$" "$work/app.log" || { echo "FAIL: the scoring app loaded libtorch"; fail=1; }

if [ "$fail" -ne 0 ]; then echo "package checks FAILED"; exit 1; fi
echo "package checks passed"
