#!/usr/bin/python3
"""PyTorch 1.13 peer of `resnet experiment degradation`: the same nets, data, recipe and budget, so the two can be compared.

The nets are the paper's CIFAR nets (section 4.2; option-A shortcuts, or none for the plain nets) from the step-parity
tests' reference (tests/ResNet.Trainer.Tests/Peers/training_step_reference.py), with one input channel. The setting
follows the C# experiment rule for rule:
  data          Debian's dataset-fashion-mnist training split; the first <subset>/10 images of each class, in file order
                (DatasetSplit.Balanced);
  normalization the subset's mean image, then each channel's standard deviation over all its pixels (per-pixel kind);
  augmentation  none (the default), or the paper's: pad 4 with zeros on the 0..1 image, random 28x28 crop,
                horizontal flip with probability 1/2;
  optimizer     torch.optim.SGD on every parameter: momentum 0.9, weight decay 1e-4, lr 0.1 divided by 10 when
                50% and 75% of the iterations are done, times the linear warm-up's factor (from StartFactor to 1 over
                its first Iterations iterations); batches of <batch>, the last partial batch dropped;
  nets          for each depth, the plain net and then the residual net, each from the same seed.
The training error of an epoch is the share of wrong predictions over that epoch's (augmented) batches, as the C#
trainer reports it. Writes degradation.csv with the C# experiment's columns, so the notebook draws both alike.
Random draws (weights, shuffle, crops) come from PyTorch's and NumPy's generators, not the C# ones: the two sides see
the same recipe, not the same numbers.

The settings come from the C# side, so the two cannot drift apart: `resnet experiment degradation [flags] --show-settings`
prints them as JSON (DegradationOptions: Depths, TrainingImages, Epochs, BatchSize, LearningRate, Warmup, Augmentation, Seed).

Usage: /usr/bin/python3 bench/degradation/pytorch_peer.py --settings "$(resnet experiment degradation --seed 2 --show-settings)" \
           --threads 2 --output DIR [--nets plain20,resnet56]
"""
import argparse
import gzip
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "ResNet.Trainer.Tests", "Peers"))
from training_step_reference import CifarNet  # noqa: E402  (the one PyTorch definition of the CIFAR nets)

FASHION = "/usr/share/datasets/fashion-mnist"
CSV_HEADER = "net,depth,residual,parameters,epoch,iteration,train_loss,train_error,learning_rate,seconds"


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def balanced_subset(images, labels, per_class):
    counts, chosen = np.zeros(10, dtype=int), []
    for i, y in enumerate(labels):
        if counts[y] < per_class:
            chosen.append(i)
        counts[y] += 1
    return images[chosen], labels[chosen]


def augment(x, rng, pad):
    """Pad with zeros, crop back at a random offset, flip half: x is [N, 1, H, W] on the 0..1 scale."""
    n, _, h, w = x.shape
    padded = np.zeros((n, 1, h + 2 * pad, w + 2 * pad), dtype=np.float32)
    padded[:, :, pad:pad + h, pad:pad + w] = x
    out = np.empty_like(x)
    dy, dx = rng.integers(0, 2 * pad + 1, n), rng.integers(0, 2 * pad + 1, n)
    flip = rng.integers(0, 2, n) == 1
    for i in range(n):
        crop = padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w]
        out[i] = crop[:, :, ::-1] if flip[i] else crop
    return out


def warmup_factor(warmup, iteration):
    """The C# LinearWarmup's factor at an iteration: StartFactor rising linearly to 1 over Iterations iterations."""
    if warmup is None or iteration >= warmup["Iterations"]:
        return 1.0
    start = warmup["StartFactor"]
    return start + (1 - start) * iteration / max(1, warmup["Iterations"])


def train_one(name, depth, residual, x, y, args, mean, std, out):
    torch.manual_seed(args.seed)
    model = CifarNet((depth - 2) // 6, residual, 10, in_channels=1)
    parameters = sum(p.numel() for p in model.parameters())
    sgd = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, weight_decay=1e-4)
    per_epoch = len(x) // args.batch_size
    total = per_epoch * args.epochs
    drops = (round(0.5 * total), round(0.75 * total))  # Python and .NET both round halves to even
    rng = np.random.default_rng(args.seed)
    shuffle = torch.Generator().manual_seed(args.seed)
    print(f"{name}: {parameters:,} parameters, {args.epochs} epochs on {len(x)} images", flush=True)
    start, iteration = time.perf_counter(), 0
    model.train()
    for epoch in range(1, args.epochs + 1):
        epoch_start = time.perf_counter()
        order = torch.randperm(len(x), generator=shuffle).numpy()
        loss_sum, wrong, seen = 0.0, 0, 0
        for b in range(per_epoch):
            lr = args.lr * (0.1 ** sum(iteration >= d for d in drops)) * warmup_factor(args.warmup, iteration)
            for group in sgd.param_groups:
                group["lr"] = lr
            idx = order[b * args.batch_size:(b + 1) * args.batch_size]
            batch = (torch.from_numpy(augment(x[idx], rng, args.padding) if args.padding is not None else x[idx]) - mean) / std
            target = torch.from_numpy(y[idx])
            logits = model(batch)
            loss = F.cross_entropy(logits, target)
            sgd.zero_grad(set_to_none=True)
            loss.backward()
            sgd.step()
            iteration += 1
            loss_sum += loss.item() * len(idx)
            wrong += (logits.argmax(1) != target).sum().item()
            seen += len(idx)
        seconds = time.perf_counter() - epoch_start  # the epoch's own wall time, as the C# CSV has it
        print(f"  epoch {epoch:3}/{args.epochs}  loss {loss_sum / seen:.4f}  train err {100 * wrong / seen:5.1f} %  lr {lr:g}  "
              f"{time.perf_counter() - start:.0f} s", flush=True)
        out.write(f"{name},{depth},{'true' if residual else 'false'},{parameters},{epoch},{iteration},{loss_sum / seen:.6g},{wrong / seen:.6g},{lr:.6g},{seconds:.2f}\n")
        out.flush()
    return wrong / seen, time.perf_counter() - start


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=FASHION)
    ap.add_argument("--settings", required=True, help="the JSON of resnet experiment degradation --show-settings")
    ap.add_argument("--nets", default="", help="only these of the experiment's nets, e.g. resnet20,resnet56")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--output", required=True)
    args = ap.parse_args()
    settings = json.loads(args.settings)
    augmentation = settings["Augmentation"]
    if augmentation.get("$type") == "none":
        augmentation = None
    elif augmentation.get("$type") != "cifar" or not augmentation.get("Flip"):
        raise SystemExit(f"this peer implements no augmentation or the paper's pad, crop and flip, not {augmentation}")
    args.depths, args.subset, args.epochs = settings["Depths"], settings["TrainingImages"], settings["Epochs"]
    args.batch_size, args.lr, args.seed, args.padding = settings["BatchSize"], settings["LearningRate"], settings["Seed"], augmentation and augmentation["Padding"]
    args.warmup = settings["Warmup"]
    if args.warmup is not None and args.warmup.get("$type") != "linear":
        raise SystemExit(f"this peer implements the linear warm-up only, not {args.warmup}")
    torch.set_num_threads(args.threads)
    images = read_idx(os.path.join(args.data, "train-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(args.data, "train-labels-idx1-ubyte.gz")).astype(np.int64)
    x, y = balanced_subset(images, labels, args.subset // 10 if args.subset else len(labels))
    x = (x.astype(np.float32) / 255)[:, None]
    mean = torch.from_numpy(x.mean(0))
    std = float(x.std())
    print(f"torch {torch.__version__}, {args.threads} threads; {len(x)} images; batch {args.batch_size}, lr {args.lr} "
          f"(/10 at 50% and 75%), warm-up {args.warmup}, momentum 0.9, weight decay 1e-4; seed {args.seed}", flush=True)
    os.makedirs(args.output, exist_ok=True)
    wanted = set(filter(None, args.nets.split(",")))
    finals = []
    with open(os.path.join(args.output, "degradation.csv"), "w") as out:
        out.write(CSV_HEADER + "\n")
        for depth in args.depths:
            for residual in (False, True):
                name = f"{'resnet' if residual else 'plain'}{depth}"
                if wanted and name not in wanted:
                    continue
                error, seconds = train_one(name, depth, residual, x, y, args, mean, std, out)
                finals.append((name, error, seconds))
    for name, error, seconds in finals:
        print(f"  {name:<10} final training error {100 * error:6.2f} %  ({seconds:.0f} s)")


if __name__ == "__main__":
    main()
