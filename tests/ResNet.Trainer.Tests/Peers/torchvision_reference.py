"""Reference outputs from torchvision for the parity tests.

Usage: /usr/bin/python3 torchvision_reference.py <arch> <out_dir> <seed> <image_size> <batch>
Writes <out_dir>/weights.pth (the state_dict before any train-mode forward) and <out_dir>/outputs.pth
with the input and the logits in eval mode, after one train-mode forward, and in eval mode afterwards.
"""
import sys

import torch
import torchvision


def main():
    arch, out_dir, seed, size, batch = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    torch.manual_seed(seed)
    model = getattr(torchvision.models, arch)(weights=None)
    # Non-trivial BN statistics and affine parameters, so eval mode tests more than the identity. Scales stay
    # below 1 so activations do not grow through 16 bottlenecks: the 1e-4 bound then tests float32 agreement,
    # not the size of the logits (with scales up to 1.5, ResNet-50's logits reach ~75 and rounding alone nears 1e-4).
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.4, 0.9)
                m.bias.normal_(0.0, 0.1)
                m.running_mean.normal_(0.0, 0.1)
                m.running_var.uniform_(0.8, 1.5)
    model.eval()
    torch.save(model.state_dict(), f"{out_dir}/weights.pth")

    x = torch.randn(batch, 3, size, size)
    with torch.no_grad():
        eval_logits = model(x)
        model.train()
        train_logits = model(x)
        model.eval()
        eval_after_train = model(x)
    torch.save({"input": x, "eval": eval_logits, "train": train_logits, "eval_after_train": eval_after_train},
               f"{out_dir}/outputs.pth")
    print(f"torch {torch.__version__} torchvision {torchvision.__version__}")


if __name__ == "__main__":
    main()
