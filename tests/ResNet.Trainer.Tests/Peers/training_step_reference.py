"""Reference SGD training steps in PyTorch for the step-parity tests.

Usage: /usr/bin/python3 training_step_reference.py <arch> <out_dir> <seed> <image_size> <batch> <steps64> <steps32>
                                                   <classes> <nesterov 0|1> <lr> <momentum> <weight_decay> <label_smoothing>
<arch> is resnet20 or plain20 (CIFAR, option A, written out below) or resnet18 (torchvision's).
Writes to <out_dir>:
  weights.pth   the initial state_dict (float32), before any step;
  batches.pth   "x" [steps, batch, 3, size, size] float64 and "y" [steps, batch] int64: random images and labels,
                read back from the file and used in order by both sides (no augmentation);
  reference.pth "loss64" [steps64] and "loss32" [steps32] (float64), and the float64 run's state_dict after its
                last step under "after.<key>", and after its second step under "after2.<key>".
The optimizer is torch.optim.SGD on every parameter (the paper's: lr 0.1, momentum 0.9, weight decay 1e-4).
"""
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

EARLY_STEPS = 2  # the state is also kept after this many steps: the first step that uses the momentum buffer

class CifarBlock(nn.Module):
    """Basic block of the paper's CIFAR nets (section 4.2); option A shortcut, or none for the plain net."""

    def __init__(self, cin, cout, stride, residual):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.stride, self.extra, self.residual = stride, cout - cin, residual

    def forward(self, x):
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        if self.residual:
            # Option A (section 3.3): identity, subsampled by 2 when the block strides, and zero entries for the
            # new channels (appended after the existing ones).
            s = x[:, :, ::2, ::2] if self.stride == 2 else x
            if self.extra:
                s = F.pad(s, (0, 0, 0, 0, 0, self.extra))
            y = y + s
        return F.relu(y)


class CifarNet(nn.Module):
    """6n+2 layers: 3x3 stem of 16, three stages of n blocks (16/32/64), global average pool, fc."""

    def __init__(self, n, residual, classes, in_channels=3):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        cin = 16
        for stage, width in enumerate((16, 32, 64)):
            blocks = []
            for b in range(n):
                blocks.append(CifarBlock(cin, width, 2 if b == 0 and stage > 0 else 1, residual))
                cin = width
            setattr(self, f"layer{stage + 1}", nn.Sequential(*blocks))
        self.fc = nn.Linear(64, classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(x.mean((2, 3)))


def build(arch, classes):
    if arch == "resnet20":
        return CifarNet(3, True, classes)
    if arch == "plain20":
        return CifarNet(3, False, classes)
    if arch == "resnet18":
        return torchvision.models.resnet18(weights=None, num_classes=classes)
    raise SystemExit(f"unknown arch {arch}")


def train(model, batches, steps, sgd_options, label_smoothing, snapshot_after=None):
    """The losses of each step, and a copy of the state_dict after step <snapshot_after> (1-based)."""
    model.train()
    sgd = torch.optim.SGD(model.parameters(), **sgd_options)
    dtype = next(model.parameters()).dtype
    losses, snapshot = [], {}
    for i in range(steps):
        loss = F.cross_entropy(model(batches["x"][i].to(dtype)), batches["y"][i], label_smoothing=label_smoothing)
        losses.append(loss.item())
        sgd.zero_grad()
        loss.backward()
        sgd.step()
        if i + 1 == snapshot_after:
            snapshot = {k: v.clone() for k, v in model.state_dict().items()}
    return torch.tensor(losses, dtype=torch.float64), snapshot


def main():
    arch, out_dir = sys.argv[1], sys.argv[2]
    seed, size, batch, steps64, steps32, classes = (int(a) for a in sys.argv[3:9])
    nesterov = sys.argv[9] == "1"
    lr, momentum, weight_decay, label_smoothing = (float(a) for a in sys.argv[10:14])
    sgd_options = dict(lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov)
    torch.manual_seed(seed)
    initial = build(arch, classes).state_dict()
    torch.save(initial, f"{out_dir}/weights.pth")
    steps = max(steps64, steps32)
    # A learnable task (one random template per class, 3x the unit noise added to it) rather than pure noise: the
    # float64 runs then stay closer together (rounding differences grow more slowly than when memorising noise).
    y = torch.randint(0, classes, (steps, batch))
    templates = torch.randn(classes, 3, size, size, dtype=torch.float64)
    x = 3 * templates[y] + torch.randn(steps, batch, 3, size, size, dtype=torch.float64)
    torch.save({"x": x, "y": y}, f"{out_dir}/batches.pth")
    batches = torch.load(f"{out_dir}/batches.pth")

    model32 = build(arch, classes)
    model32.load_state_dict(initial)
    loss32, _ = train(model32, batches, steps32, sgd_options, label_smoothing)

    model64 = build(arch, classes).double()
    model64.load_state_dict(initial)
    loss64, early = train(model64, batches, steps64, sgd_options, label_smoothing, snapshot_after=EARLY_STEPS)

    result = {"loss64": loss64, "loss32": loss32}
    result.update({f"after{EARLY_STEPS}.{k}": v for k, v in early.items()})
    result.update({f"after.{k}": v.clone() for k, v in model64.state_dict().items()})
    torch.save(result, f"{out_dir}/reference.pth")
    print(f"torch {torch.__version__} torchvision {torchvision.__version__}")


if __name__ == "__main__":
    main()
