"""Reference for the pretrained-catalog parity test: torchvision's own weights.transforms() on PIL images, then the network.

Usage: /usr/bin/python3 torchvision_pretrained_images.py <arch> <tag> <weights.pth> <out.pth> <image>...
The transform is the one torchvision publishes with <arch>'s <tag> weights (ResNet50_Weights.IMAGENET1K_V2.transforms(), ...);
no weights are downloaded: the network gets <weights.pth>. Writes {"input": the preprocessed batch, "logits": eval logits}.
"""
import sys

import torch
import torchvision
from PIL import Image


def main():
    arch, tag, weights_path, out = sys.argv[1:5]
    depth = arch[len("resnet"):]
    transform = getattr(torchvision.models, f"ResNet{depth}_Weights")[tag].transforms()
    model = getattr(torchvision.models, arch)(weights=None)
    model.load_state_dict(torch.load(weights_path))
    model.eval()
    batch = torch.stack([transform(Image.open(p).convert("RGB")) for p in sys.argv[5:]])
    with torch.no_grad():
        logits = model(batch)
    torch.save({"input": batch, "logits": logits}, out)
    print(repr(transform))


if __name__ == "__main__":
    main()
