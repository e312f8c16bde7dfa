"""Writes jpeg_pillow.bin: a formula-made 32x32 RGB image and its JPEG round
trips through Pillow at the jpeg_compression qualities of make_cifar_c.py,
to measure how far Go's image/jpeg lands from Pillow's libjpeg.

Run with a Python that has numpy and Pillow (made with Pillow 9.4.0):
    /usr/bin/python3 corrupt/testdata/make_jpeg_golden.py

Layout: the input (32*32*3 bytes, HWC), then one decoded image per quality
80, 65, 58, 50, 40 (same layout).
"""
import io
import os

import numpy as np
from PIL import Image

QUALITIES = [80, 65, 58, 50, 40]

y, x = np.meshgrid(np.arange(32), np.arange(32), indexing="ij")
r = 120 + 90 * np.sin(x / 5.0) * np.cos(y / 7.0)
g = 100 + 60 * np.cos((x + y) / 9.0)
b = 60 + 40 * (x / 31.0)
disc = (x - 20) ** 2 + (y - 12) ** 2 < 36
r[disc], g[disc], b[disc] = 230, 40, 40
img = np.clip(np.stack([r, g, b], axis=-1), 0, 255).round().astype(np.uint8)

out = bytearray(img.tobytes())
for q in QUALITIES:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=q)
    buf.seek(0)
    out += np.array(Image.open(buf).convert("RGB")).tobytes()
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "jpeg_pillow.bin")
with open(path, "wb") as f:
    f.write(out)
