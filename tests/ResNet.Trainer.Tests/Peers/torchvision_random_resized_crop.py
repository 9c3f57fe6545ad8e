"""Reference for the RandomResizedCrop test: statistics of torchvision's own box draws.

Usage: /usr/bin/python3 torchvision_random_resized_crop.py <height> <width> <draws>
Prints JSON: mean and standard deviation of the box's share of the area, mean log aspect ratio (width / height).
"""
import json
import math
import sys

import torch
from torchvision import transforms


def main():
    height, width, draws = (int(a) for a in sys.argv[1:4])
    torch.manual_seed(0)
    image = torch.empty(3, height, width)
    shares, logs = [], []
    for _ in range(draws):
        _, _, h, w = transforms.RandomResizedCrop.get_params(image, scale=(0.08, 1.0), ratio=(3.0 / 4.0, 4.0 / 3.0))
        shares.append(h * w / (height * width))
        logs.append(math.log(w / h))
    mean = sum(shares) / draws
    std = math.sqrt(sum((s - mean) ** 2 for s in shares) / draws)
    print(json.dumps({"mean_share": mean, "std_share": std, "mean_log_ratio": sum(logs) / draws}))


if __name__ == "__main__":
    main()
