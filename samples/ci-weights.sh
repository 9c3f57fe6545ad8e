# Sourced by samples/apps/run-apps.sh and samples/Notebooks/run-notebooks.sh at CI scale (RESNET_NOTEBOOK_SCALE=ci).
# The machines that run CI cannot download torchvision's files, so the TransferLearning sample's catalog entry is served
# from a local mirror: a ResNet-18 state_dict with random weights, written by Debian's torchvision (/usr/bin/python3) under
# its own hashed name (resnet18-<first 8 hex digits of its SHA-256>.pth, as the downloader checks it), in a temporary
# folder that RESNET_MLNET_WEIGHTS_URL names; RESNET_MLNET_CACHE is a temporary folder too, so no user cache is touched.
# Unless the caller already set RESNET_MLNET_WEIGHTS_URL. Removes both folders when the shell exits.
if [ "${RESNET_NOTEBOOK_SCALE:-full}" = ci ] && [ -z "${RESNET_MLNET_WEIGHTS_URL:-}" ]; then
  ci_weights="$(mktemp -d -t resnet-ci-weights-XXXXXX)"
  # Added to the caller's own exit trap, if any.
  ci_previous_trap="$(trap -p EXIT | sed -E "s/^trap -- '(.*)' EXIT$/\1/")"
  trap "rm -rf '$ci_weights'; $ci_previous_trap" EXIT
  "${RESNET_PEER_PYTHON:-/usr/bin/python3}" - "$ci_weights/mirror" <<'PY'
import hashlib, os, sys
import torch, torchvision
folder = sys.argv[1]
os.makedirs(folder)
torch.manual_seed(0)
path = os.path.join(folder, "resnet18.pth")
torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)
digest = hashlib.sha256(open(path, "rb").read()).hexdigest()
os.rename(path, os.path.join(folder, f"resnet18-{digest[:8]}.pth"))
PY
  export RESNET_MLNET_WEIGHTS_URL="$ci_weights/mirror"
  export RESNET_MLNET_CACHE="$ci_weights/cache"
  echo "== CI weights: $(ls "$RESNET_MLNET_WEIGHTS_URL") (random, torchvision) in RESNET_MLNET_WEIGHTS_URL=$RESNET_MLNET_WEIGHTS_URL"
fi
