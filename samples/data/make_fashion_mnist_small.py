#!/usr/bin/python3
"""Writes samples/data/fashion-mnist-small: a class-balanced subset of Fashion-MNIST as an image folder.

Reads the official IDX files from Debian's dataset-fashion-mnist package and takes, for each of the 10
classes, the first 100 images of the official training set and the first 30 of the official test set,
written as 28x28 grayscale PNGs to fashion-mnist-small/{train,test}/<class>/<split>-<index>.png.
Standard library only, so it runs anywhere: /usr/bin/python3 make_fashion_mnist_small.py [source-dir]
"""
import gzip
import os
import struct
import sys
import zlib

CLASSES = ["T-shirt_top", "Trouser", "Pullover", "Dress", "Coat",
           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle_boot"]
PER_CLASS = {"train": 100, "test": 30}
PREFIX = {"train": "train", "test": "t10k"}


def read_idx(path, magic):
    with gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb") as f:
        data = f.read()
    found, = struct.unpack(">i", data[:4])
    if found != magic:
        sys.exit(f"{path}: magic {found:#x}, expected {magic:#x}")
    rank = magic & 0xFF
    dims = struct.unpack(">" + "i" * rank, data[4:4 + 4 * rank])
    return dims, data[4 + 4 * rank:]


def png_gray(pixels, width, height):
    """A minimal 8-bit grayscale PNG (filter type 0 on every row)."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    raw = b"".join(b"\x00" + pixels[y * width:(y + 1) * width] for y in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def main():
    source = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/datasets/fashion-mnist"
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fashion-mnist-small")
    for split, per_class in PER_CLASS.items():
        (count, rows, cols), images = read_idx(os.path.join(source, f"{PREFIX[split]}-images-idx3-ubyte.gz"), 0x803)
        (_,), labels = read_idx(os.path.join(source, f"{PREFIX[split]}-labels-idx1-ubyte.gz"), 0x801)
        taken = [0] * len(CLASSES)
        for i in range(count):
            label = labels[i]
            if taken[label] >= per_class:
                continue
            taken[label] += 1
            folder = os.path.join(out, split, CLASSES[label])
            os.makedirs(folder, exist_ok=True)
            with open(os.path.join(folder, f"{split}-{i:05d}.png"), "wb") as f:
                f.write(png_gray(images[i * rows * cols:(i + 1) * rows * cols], cols, rows))
            if sum(taken) == per_class * len(CLASSES):
                break
        print(f"{split}: {sum(taken)} images, {per_class} per class")


if __name__ == "__main__":
    main()
