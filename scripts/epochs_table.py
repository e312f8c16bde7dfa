#!/usr/bin/env python3
"""Prints the per-epoch table of docs/models.md from a report `csam-onnx
train` wrote (OUT.onnx.json), or from a training's epoch records
(OUT.onnx.ckpt.epochs.jsonl, the last record of each epoch).

    scripts/epochs_table.py out/models/cifar10_resnet18_w0.5.onnx.json
"""
import json
import sys


def epochs(path):
    with open(path) as f:
        if path.endswith(".jsonl"):
            last = {}
            for line in f:
                if line.strip():
                    p = json.loads(line)
                    last[p["epoch"]] = p
            return [last[e] for e in sorted(last)]
        return json.load(f)["epochs"]


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: epochs_table.py REPORT.json | EPOCHS.jsonl")
    print("| epoch | train loss | train accuracy | test accuracy |")
    print("|---|---|---|---|")
    for p in epochs(sys.argv[1]):
        test = p.get("test_accuracy", -1)
        test = "–" if test < 0 else "%.2f%%" % (100 * test)
        print("| %d | %.3f | %.2f%% | %s |" % (p["epoch"], p["train_loss"], 100 * p["train_accuracy"], test))


if __name__ == "__main__":
    main()
