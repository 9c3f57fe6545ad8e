"""Reference for the random-erasing test: statistics of torchvision's own RandomErasing box draws.

Usage: /usr/bin/python3 torchvision_random_erasing.py <height> <width> <draws>
Prints JSON: the share of draws that found a box (torchvision leaves the image whole after 10 misses), and over those,
the mean and standard deviation of the box's share of the area and the mean log aspect ratio (height / width).
"""
import json
import math
import sys

import torch
from torchvision import transforms


def main():
    height, width, draws = (int(a) for a in sys.argv[1:4])
    torch.manual_seed(0)
    image = torch.zeros(3, height, width)
    shares, logs = [], []
    for _ in range(draws):
        _, _, h, w, _ = transforms.RandomErasing.get_params(image, scale=(0.02, 0.33), ratio=(0.3, 3.3), value=[0])
        if h == height and w == width:
            continue  # no box fitted: the image is left whole
        shares.append(h * w / (height * width))
        logs.append(math.log(h / w))
    n = len(shares)
    mean = sum(shares) / n
    std = math.sqrt(sum((s - mean) ** 2 for s in shares) / n)
    print(json.dumps({"found": n / draws, "mean_share": mean, "std_share": std, "mean_log_ratio": sum(logs) / n}))


if __name__ == "__main__":
    main()
