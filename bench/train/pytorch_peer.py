#!/usr/bin/python3
"""PyTorch 1.13 eager peer for bench/train: the same models and step as ResNet.Trainer's benchmark.

Prints one JSON line per measurement: training images/s of a bare SGD step on a fixed batch, and
optionally an end-to-end pass through a DataLoader (pad-4 crop + flip + normalization on one worker).
Run with Debian's /usr/bin/python3 (python3-torch, python3-torchvision).
"""
import argparse
import json
import os
import resource
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision


# --mkldnn: activations in oneDNN's blocked layout (x.to_mkldnn()) from the stem to the pooling, as ResNet.Trainer does;
# option A's strided view and zero channels go through a dense tensor and back.
BLOCKED = False


def to_blocked(x):
    return x.to_mkldnn() if BLOCKED else x


def to_dense(x):
    return x.to_dense() if BLOCKED else x


class CifarBlock(nn.Module):
    """Basic block with the paper's option A shortcut (stride-2 subsampling, zero-padded channels)."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.stride, self.extra = stride, cout - cin

    def forward(self, x):
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        if self.stride == 1 and not self.extra:
            return F.relu(y + x)
        s = to_dense(x)
        s = s[:, :, ::2, ::2] if self.stride == 2 else s
        if self.extra:
            s = F.pad(s, (0, 0, 0, 0, 0, self.extra))
        return F.relu(y + to_blocked(s))


class CifarResNet(nn.Module):
    def __init__(self, n, classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        blocks, cin = [], 16
        for width, stride in ((16, 1), (32, 2), (64, 2)):
            for i in range(n):
                blocks.append(CifarBlock(cin, width, stride if i == 0 else 1))
                cin = width
        self.layers = nn.Sequential(*blocks)
        self.fc = nn.Linear(64, classes)

    def forward(self, x):
        return self.fc(to_dense(self.layers(F.relu(self.bn1(self.conv1(to_blocked(x)))))).mean((2, 3)))


class BlockedTorchvision(nn.Module):
    """torchvision's ResNet with the trunk in the blocked layout (its own forward flattens, which that layout cannot)."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        n = self.net
        x = n.maxpool(n.relu(n.bn1(n.conv1(to_blocked(x)))))
        x = n.layer4(n.layer3(n.layer2(n.layer1(x))))
        return n.fc(torch.flatten(to_dense(n.avgpool(x)), 1))


def build(name):
    if name.startswith("resnet") and int(name[6:]) in (20, 32, 44, 56, 110):
        return CifarResNet((int(name[6:]) - 2) // 6)
    net = getattr(torchvision.models, name)(num_classes=10)
    return BlockedTorchvision(net) if BLOCKED else net


class Augmented(torch.utils.data.Dataset):
    def __init__(self, images, mean, std):
        self.images, self.mean, self.std = images, mean, std
        size = images.shape[-1]
        self.crop = torchvision.transforms.RandomCrop(size, padding=4)
        self.flip = torchvision.transforms.RandomHorizontalFlip()

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        x = self.images[i].float().div_(255)
        x = (x - self.mean) / self.std
        return self.flip(self.crop(x)), i % 10


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="resnet20")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--epoch", action="store_true")
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--mkldnn", action="store_true")
    # --bf16: PyTorch's CPU autocast to bfloat16, the peer of ResNet.Trainer's Precision = "bf16". Checked in 1.13: convolutions,
    # batch norm (float32 parameters and statistics, bfloat16 output) and the classifier give bfloat16, the loss float32;
    # master weights and SGD stay float32. (Ours runs the pooled features and the classifier in float32.)
    p.add_argument("--bf16", action="store_true")
    a = p.parse_args()
    global BLOCKED
    BLOCKED = a.mkldnn
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = build(a.model)
    fmt = torch.channels_last if a.channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    x = torch.randn(a.batch, 3, a.size, a.size).contiguous(memory_format=fmt)
    y = torch.randint(0, 10, (a.batch,))

    def step(inp, target):
        opt.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.bf16):
            loss = F.cross_entropy(model(inp), target)
        loss.backward()
        opt.step()

    def faults():
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt

    def report(kind, ips, ipc, faults_per_step=None):
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps({"impl": f"PyTorch {torch.__version__} eager", "kind": kind, "optimizer": "torch.optim.SGD", "model": a.model,
                          "batch": a.batch, "size": a.size, "threads": a.threads, "channels_last": a.channels_last,
                          "mkldnn": a.mkldnn, "precision": "bf16" if a.bf16 else "fp32",
                          "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "(libgomp default)"),
                          "images_per_second": round(ips, 1), "images_per_cpu_second": round(ipc, 1), "peak_rss_mb": round(rss),
                          "page_faults_per_step": faults_per_step}), flush=True)

    for _ in range(a.warmup):
        step(x, y)
    t, c, f = time.perf_counter(), time.process_time(), faults()
    for _ in range(a.steps):
        step(x, y)
    report("step", a.steps * a.batch / (time.perf_counter() - t), a.steps * a.batch / (time.process_time() - c), (faults() - f) // a.steps)

    if a.epoch:
        g = torch.Generator().manual_seed(0)
        images = torch.randint(0, 256, (a.batch * (a.steps + a.warmup), 3, a.size, a.size), dtype=torch.uint8, generator=g)
        mean = images.float().div(255).mean(0)
        std = images.float().div(255).std((0, 2, 3)).view(3, 1, 1)
        loader = torch.utils.data.DataLoader(Augmented(images, mean, std), batch_size=a.batch, shuffle=True, num_workers=1, drop_last=True)
        it = iter(loader)
        for _ in range(a.warmup):
            xb, yb = next(it)
            step(xb.contiguous(memory_format=fmt), yb)
        t, c = time.perf_counter(), time.process_time()
        for _ in range(a.steps):
            xb, yb = next(it)
            step(xb.contiguous(memory_format=fmt), yb)
        # process_time excludes the DataLoader worker process: the CPU figure covers the training process only.
        report("epoch", a.steps * a.batch / (time.perf_counter() - t), a.steps * a.batch / (time.process_time() - c))


if __name__ == "__main__":
    main()
