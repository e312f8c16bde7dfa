#!/usr/bin/env python3
"""Paired CC-Cert comparison of C-SAM against each other method of an
experiment cell, on the same certified test images, from the verify runs'
raw.json files in the experiment's work folder (per-image outcomes are not
in docs/results/*.json).

Usage: scripts/paired_cccert.py [WORK_DIR] [EPS] [C-SAM_METHOD]
  WORK_DIR  the (data, arch) folder, default runs/headline/cifar10/resnet18-w0.25
  EPS       certification level, default 1e-3
  METHOD    default csam

For every seed and sparsity folder it counts the images certified by C-SAM
only and by the other method only (the discordant pairs), sums them over
the seeds, and gives the two-sided exact sign-test p-value.
"""
import glob
import json
import math
import os
import sys

work = sys.argv[1] if len(sys.argv) > 1 else "runs/headline/cifar10/resnet18-w0.25"
eps = float(sys.argv[2]) if len(sys.argv) > 2 else 1e-3
ref = sys.argv[3] if len(sys.argv) > 3 else "csam"


def certified(path):
    r = json.load(open(path))
    return {s["index"]: s["correct"] and s["bound"] < eps for s in r["model"]["cc_cert"]["samples"]}


def sign_test(a, b):
    n = a + b
    if n == 0:
        return 1.0
    k = min(a, b)
    p = sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n
    return min(1.0, 2 * p)


totals = {}
for seed_dir in sorted(glob.glob(os.path.join(work, "seed*"))):
    dense = os.path.join(seed_dir, "dense", "verify", "raw.json")
    for sp_dir in sorted(glob.glob(os.path.join(seed_dir, "s*"))):
        mine = os.path.join(sp_dir, ref, "verify", "raw.json")
        if not os.path.exists(mine):
            continue
        cs = certified(mine)
        others = {m: os.path.join(sp_dir, m, "verify", "raw.json") for m in os.listdir(sp_dir) if m != ref}
        if os.path.exists(dense):
            others["dense"] = dense
        for m, path in others.items():
            if not os.path.exists(path):
                continue
            o = certified(path)
            common = cs.keys() & o.keys()
            t = totals.setdefault((os.path.basename(sp_dir), m), [0, 0, 0, 0, 0])
            t[0] += sum(1 for i in common if cs[i] and not o[i])
            t[1] += sum(1 for i in common if o[i] and not cs[i])
            t[2] += sum(1 for i in common if cs[i])
            t[3] += sum(1 for i in common if o[i])
            t[4] += len(common)

print(f"| sparsity | method | images (all seeds) | certified by {ref} | by the method | {ref} only | method only | sign test p |")
print("|---|---|---:|---:|---:|---:|---:|---:|")
for (sp, m), (a, b, ca, cb, n) in sorted(totals.items()):
    print(f"| {sp[1:]} | {m} | {n} | {ca} | {cb} | {a} | {b} | {sign_test(a, b):.2g} |")
