"""A torchvision state_dict for the catalog tests, and torchvision's pooled features on the images given.

Usage: /usr/bin/python3 torchvision_catalog_peer.py <arch> <out_dir> <seed> [image ...]
Writes <out_dir>/weights.pth (random weights with non-trivial BN statistics), <out_dir>/conv1.bin (conv1.weight as
float32, row-major) and <out_dir>/features.bin (N x features float32: the trunk's pooled features of each image, read as
RGB and prepared as torchvision's ImageNet weights.transforms() prepares it: resize to 256, centre crop 224, scale to
0..1, ImageNet's mean and std).
"""
import sys

import numpy as np
import torch
import torchvision
from PIL import Image


def main():
    arch, out_dir, seed, images = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
    torch.manual_seed(seed)
    model = getattr(torchvision.models, arch)(weights=None)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.4, 0.9)
                m.bias.normal_(0.0, 0.1)
                m.running_mean.normal_(0.0, 0.1)
                m.running_var.uniform_(0.8, 1.5)
    model.eval()
    torch.save(model.state_dict(), f"{out_dir}/weights.pth")
    model.conv1.weight.detach().numpy().astype(np.float32).tofile(f"{out_dir}/conv1.bin")

    prep = torchvision.transforms.Compose([
        torchvision.transforms.Resize(256),
        torchvision.transforms.CenterCrop(224),
        torchvision.transforms.ToTensor(),
        torchvision.transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
    ])
    model.fc = torch.nn.Identity()
    features = []
    with torch.no_grad():
        for path in images:
            x = prep(Image.open(path).convert("RGB")).unsqueeze(0)
            features.append(model(x)[0].numpy())
    np.asarray(features, dtype=np.float32).reshape(-1).tofile(f"{out_dir}/features.bin")
    print(f"torch {torch.__version__} torchvision {torchvision.__version__}")


if __name__ == "__main__":
    main()
