"""Writes pixelate_pillow.bin: Pillow's BOX resize down to int(n*c) and back,
as make_cifar_c.py's pixelate does, for two formula-made test images.

Run with a Python that has numpy and Pillow (made with Pillow 9.4.0):
    /usr/bin/python3 corrupt/testdata/make_pixelate_golden.py

Layout: for each size (h, w) in SIZES, the input image (h*w*3 bytes, HWC),
then for severities 1..5 the output image (h*w*3 bytes, HWC).
"""
import os

import numpy as np
from PIL import Image

SIZES = [(32, 32), (40, 56)]
FACTORS = [0.95, 0.9, 0.85, 0.75, 0.65]


def image(h, w):
    y, x, c = np.meshgrid(np.arange(h), np.arange(w), np.arange(3), indexing="ij")
    return ((x * x * 31 + y * 17 + c * 101 + x * y * 7) % 256).astype(np.uint8)


out = bytearray()
for h, w in SIZES:
    x = image(h, w)
    out += x.tobytes()
    for c in FACTORS:
        small = Image.fromarray(x).resize((int(w * c), int(h * c)), Image.BOX)
        out += np.array(small.resize((w, h), Image.BOX)).tobytes()
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pixelate_pillow.bin")
with open(path, "wb") as f:
    f.write(out)
