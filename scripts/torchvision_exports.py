#!/usr/bin/python3
"""Export torchvision ResNet-18, GoogLeNet and MobileNet-V2 to ONNX for `csam-onnx check`.

Usage:
    /usr/bin/python3 scripts/torchvision_exports.py OUTDIR [--subset] [--force]
        [--models resnet18,googlenet,mobilenet_v2] [--opsets 13,14,15,16,17]
        [--sizes 32,224] [--extras] [--more] [--probes] [--check BIN [--table FILE]]

With --check BIN (a built csam-onnx, e.g. `go build -o /tmp/csam-onnx
./cmd/csam-onnx`), after exporting it runs `BIN check` on every selected
export twice, on seeded random inputs (--batch 3 for dynamic exports) and on
the stored input, and prints a tab-separated table (model, opset, bn, batch,
size, input, result, max abs diff, seconds), also written to --table FILE.
It exits 1 if any check fails.

--extras adds 11 exports with other settings (no constant folding,
initializers as inputs, GoogLeNet transform_input, off-matrix input sizes);
--more adds 22 exports of eleven other torchvision classifiers (ShuffleNet-V2,
SqueezeNet, EfficientNet-B0, MNASNet, RegNet, DenseNet-121, MobileNet-V3,
ResNeXt-50, ConvNeXt-Tiny, ViT-B/16, Swin-T) at opsets 14 and 17.
--probes writes OUTDIR/probes/, exports the Go engine is known not to run yet
(see write_probes).

Run it with Debian's python3 (python3-torch 1.13, python3-torchvision 0.14,
python3-onnx 1.12), not a pyenv python. The models get random weights from a
fixed seed (nothing can be downloaded on these machines) and are exported in
eval mode. Each export is a folder in the ONNX backend-test layout:

    OUTDIR/<model>_<size>px_op<opset>_<bnfold|bnkept>_<b2|dyn>/
        model.onnx
        test_data_set_0/input_0.pb    (the input given to PyTorch)
        test_data_set_0/output_0.pb   (PyTorch's output for it)

The axes:
  * model: resnet18, googlenet (aux_logits=False, transform_input=False),
    mobilenet_v2;
  * opset 13..17;
  * bnfold: the default eval-mode export, which folds BatchNormalization into
    the preceding Conv; bnkept: training=TrainingMode.PRESERVE on an eval-mode
    model, which keeps every BatchNormalization node (inference form);
  * b2: static batch 2; dyn: dynamic batch (dim 0 named "batch"), with a
    stored input of batch 3;
  * size: 32 or 224 pixels square.

The full product is 3*5*2*2*2 = 120 exports (about 3.4 GB). --subset writes a
smaller set in which every value of every axis appears at least twice per
model (and every pair of non-model axis values at least once).

The output folder must be outside the repository: the files are large and are
generated, not source.
"""

import argparse
import itertools
import os
import re
import subprocess
import time

import numpy as np
import onnx
import torch
import torchvision
from onnx import numpy_helper

MODELS = ("resnet18", "googlenet", "mobilenet_v2")
# --more: other torchvision classifiers, each exported once per opset of
# MORE_OPSETS (BatchNorm folded, dynamic batch) at 64 px, or 224 px where
# the architecture fixes its input size (patch and window transformers).
MORE = ("shufflenet_v2_x0_5", "squeezenet1_1", "efficientnet_b0", "mnasnet0_5", "regnet_x_400mf",
        "densenet121", "mobilenet_v3_small", "resnext50_32x4d", "convnext_tiny", "vit_b_16", "swin_t")
MORE_OPSETS = (14, 17)
MORE_FIXED_224 = ("vit_b_16", "swin_t")
OPSETS = (13, 14, 15, 16, 17)
BNS = ("bnfold", "bnkept")
BATCHES = ("b2", "dyn")
SIZES = (32, 224)

SEED = 20260101
STATIC_BATCH = 2
DYNAMIC_BATCH = 3  # a batch size the export was not traced with
LOGIT_STD = 5.0


def build(name, transform_input=False):
    """Returns the torchvision model with random weights and randomised
    BatchNorm statistics, in eval mode."""
    known = MODELS + MORE
    if name not in known:
        raise SystemExit(f"torchvision_exports: unknown model {name!r}; want one of {', '.join(known)}")
    torch.manual_seed(SEED + known.index(name))
    if name == "googlenet":
        m = torchvision.models.googlenet(
            weights=None, aux_logits=False, transform_input=transform_input, init_weights=True)
    else:
        m = getattr(torchvision.models, name)(weights=None)
    # Fresh BatchNorm layers have mean 0, var 1, weight 1, bias 0 (ResNet
    # even zero-inits nothing here, but its BN is otherwise the identity up
    # to eps): folding them would test nothing. Give them statistics like a
    # trained network's, mild enough that activations stay O(1).
    g = torch.Generator().manual_seed(SEED + 100 + known.index(name))
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                c = mod.num_features
                mod.running_mean.copy_(0.1 * torch.randn(c, generator=g))
                mod.running_var.copy_(0.5 + torch.rand(c, generator=g))
                mod.weight.copy_(0.5 + torch.rand(c, generator=g))
                mod.bias.copy_(0.1 * torch.randn(c, generator=g))
    m.eval()
    # Random classifiers produce logits of a few hundredths (GoogLeNet's and
    # MobileNet-V2's heads are initialised with std 0.01), which a 1e-4
    # absolute tolerance would accept almost whatever the engine computed.
    # Scale the final Linear so the logits have a standard deviation of
    # LOGIT_STD, as a trained classifier's do.
    # The classifier: the last Linear (SqueezeNet's is a 1×1 Conv2d).
    fc = [mod for mod in m.modules() if isinstance(mod, torch.nn.Linear)
          or (name == "squeezenet1_1" and isinstance(mod, torch.nn.Conv2d))][-1]
    with torch.no_grad():
        if float(fc.weight.abs().max()) == 0:
            # ViT zero-initialises its head: every logit would be the bias.
            fc.weight.copy_(0.02 * torch.randn(fc.weight.shape, generator=g))
            fc.bias.copy_(0.02 * torch.randn(fc.bias.shape, generator=g))
        px = 224 if name in MORE_FIXED_224 else 64
        x = torch.randn(8 if px == 64 else 2, 3, px, px, generator=g)
        s = LOGIT_STD / float(m(x).std())
        fc.weight.mul_(s)
        fc.bias.mul_(s)
    return m


def combos(subset):
    """Yields (opset, bn, batch, size) tuples."""
    full = list(itertools.product(OPSETS, BNS, BATCHES, SIZES))
    if not subset:
        return full
    # Every (bn, batch, size) combination (8) once at two different opsets:
    # 16 exports per model, each opset appearing 3 or 4 times, each other
    # axis value 8 times, every pair of (bn, batch, size) values twice.
    out = []
    rest = list(itertools.product(BNS, BATCHES, SIZES))
    for i, (bn, batch, size) in enumerate(rest):
        for k in (0, 1):
            opset = OPSETS[(i + 3 * k) % len(OPSETS)]
            out.append((opset, bn, batch, size))
    return out


# EXTRAS are other export settings a PyTorch user may choose, beyond the
# matrix: (model, opset, bn, batch, size, extra) where extra is
#   nofold: do_constant_folding=False (the graph keeps the ops torch.onnx
#           would have folded away);
#   initsinputs: keep_initializers_as_inputs=True (every weight is also a
#           graph input, as exports before opset 9 did by default);
#   tfinput: GoogLeNet with transform_input=True (torchvision's default with
#           pretrained weights: the input is renormalised per channel in the
#           graph with Gather/Unsqueeze/Mul/Add/Concat).
#   odd:    an input size off the matrix, where ceil_mode pooling and
#           stride-2 padding produce partial windows at the border.
EXTRAS = (
    ("resnet18", 13, "bnkept", "dyn", 32, "nofold"),
    ("googlenet", 17, "bnfold", "b2", 32, "nofold"),
    ("mobilenet_v2", 15, "bnkept", "dyn", 32, "nofold"),
    ("resnet18", 14, "bnfold", "b2", 32, "initsinputs"),
    ("mobilenet_v2", 16, "bnkept", "b2", 32, "initsinputs"),
    ("googlenet", 16, "bnkept", "dyn", 32, "tfinput"),
    ("googlenet", 13, "bnfold", "b2", 224, "tfinput"),
    ("googlenet", 15, "bnkept", "dyn", 57, "odd"),
    ("googlenet", 17, "bnfold", "b2", 97, "odd"),
    ("resnet18", 16, "bnkept", "b2", 45, "odd"),
    ("mobilenet_v2", 14, "bnfold", "dyn", 50, "odd"),
)


def folder_name(model, opset, bn, batch, size, extra=""):
    name = f"{model}_{size}px_op{opset}_{bn}_{batch}"
    return name + "_" + extra if extra else name


def export_one(model_name, model, outdir, opset, bn, batch, size, force, extra="", check_bn=True):
    d = os.path.join(outdir, folder_name(model_name, opset, bn, batch, size, extra))
    path = os.path.join(d, "model.onnx")
    data = os.path.join(d, "test_data_set_0")
    if not force and os.path.exists(os.path.join(data, "output_0.pb")):
        return d, 0.0, True
    os.makedirs(data, exist_ok=True)
    t0 = time.monotonic()

    g = torch.Generator().manual_seed(SEED + 7 * opset + size)
    trace_x = torch.randn(STATIC_BATCH, 3, size, size, generator=g)
    kw = dict(
        opset_version=opset,
        input_names=["input"],
        output_names=["output"],
        do_constant_folding=extra != "nofold",
        keep_initializers_as_inputs=extra == "initsinputs",
    )
    if bn == "bnkept":
        kw["training"] = torch.onnx.TrainingMode.PRESERVE
    else:
        kw["training"] = torch.onnx.TrainingMode.EVAL
    if batch == "dyn":
        kw["dynamic_axes"] = {"input": {0: "batch"}, "output": {0: "batch"}}
    tmp = path + ".tmp"
    torch.onnx.export(model, trace_x, tmp, **kw)
    os.replace(tmp, path)

    n = STATIC_BATCH if batch == "b2" else DYNAMIC_BATCH
    x = torch.randn(n, 3, size, size, generator=g)
    with torch.no_grad():
        y = model(x)
    onnx.save_tensor(numpy_helper.from_array(x.numpy().astype(np.float32), "input"),
                     os.path.join(data, "input_0.pb"))
    onnx.save_tensor(numpy_helper.from_array(y.numpy().astype(np.float32), "output"),
                     os.path.join(data, "output_0.pb"))

    # Sanity: the export has the BatchNormalization nodes we asked for.
    ops = {n.op_type for n in onnx.load(path, load_external_data=False).graph.node}
    has_bn = "BatchNormalization" in ops
    # (Not for --more: DenseNet's BatchNorms precede their convolutions
    # and cannot be folded.)
    if check_bn and has_bn != (bn == "bnkept"):
        raise SystemExit(f"torchvision_exports: {path}: BatchNormalization present={has_bn}, want {bn}")
    return d, time.monotonic() - t0, False


class _ConvBlock(torch.nn.Module):
    """Conv-BN-ReLU: the smallest module to export as an ONNX function."""

    def __init__(self, cin, cout):
        super().__init__()
        self.conv = torch.nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.bn = torch.nn.BatchNorm2d(cout)
        self.relu = torch.nn.ReLU()

    def forward(self, x):
        return self.relu(self.bn(self.conv(x)))


def write_probes(outdir, force):
    """Writes exports that PyTorch can produce but the Go engine is known
    not to run yet, under OUTDIR/probes/ (not part of the matrix, each a
    repro for a gap; see TestTorchvisionProbes):

      functions_min: two Conv-BN-ReLU blocks exported with
          export_modules_as_functions (opset 15+): the graph calls
          model-local ONNX functions (ModelProto.functions) by name;
      resnet18_functions: ResNet-18 with every BasicBlock as a function.
    """
    probes = os.path.join(outdir, "probes")
    torch.manual_seed(SEED)
    small = torch.nn.Sequential(_ConvBlock(3, 4), _ConvBlock(4, 4)).eval()
    resnet = build("resnet18")
    for name, model, fn, size in (
        ("functions_min", small, _ConvBlock, 8),
        ("resnet18_functions", resnet, torchvision.models.resnet.BasicBlock, 32),
    ):
        d = os.path.join(probes, name)
        data = os.path.join(d, "test_data_set_0")
        if not force and os.path.exists(os.path.join(data, "output_0.pb")):
            continue
        os.makedirs(data, exist_ok=True)
        g = torch.Generator().manual_seed(SEED)
        x = torch.randn(STATIC_BATCH, 3, size, size, generator=g)
        torch.onnx.export(model, x, os.path.join(d, "model.onnx"), opset_version=15,
                          input_names=["input"], output_names=["output"],
                          export_modules_as_functions={fn})
        with torch.no_grad():
            y = model(x)
        onnx.save_tensor(numpy_helper.from_array(x.numpy(), "input"), os.path.join(data, "input_0.pb"))
        onnx.save_tensor(numpy_helper.from_array(y.numpy(), "output"), os.path.join(data, "output_0.pb"))
        print(f"probes/{name}", flush=True)


CHECK_LINE = re.compile(r"^output\s+\[[0-9 ]+\]\s+(\S+)\s+(\S+)\s+(.*)$")


def check_one(binary, d, model, opset, bn, batch, size, mode):
    """Runs `binary check` on one export; returns a table row."""
    args = [binary, "check", "-q", os.path.join(d, "model.onnx")]
    if mode == "stored":
        args += ["--input", os.path.join(d, "test_data_set_0", "input_0.pb")]
    elif batch == "dyn":
        args += ["--batch", "3"]
    t0 = time.monotonic()
    p = subprocess.run(args, capture_output=True, text=True)
    secs = time.monotonic() - t0
    diff = "-"
    for line in p.stdout.splitlines():
        mm = CHECK_LINE.match(line)
        if mm:
            diff = mm.group(1)
    if p.returncode == 0:
        result = "pass"
    else:
        msg = (p.stderr.strip().splitlines() or ["?"])[-1]
        result = f"FAIL(exit {p.returncode}): {msg[:300]}"
    return [model, str(opset), bn, batch, f"{size}px", mode, result, diff, f"{secs:.1f}"]


def inside_repo(path):
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    p = os.path.realpath(path)
    r = os.path.realpath(repo)
    return p == r or p.startswith(r + os.sep)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("outdir", help="output folder (outside the repository)")
    ap.add_argument("--subset", action="store_true",
                    help="16 exports per model covering every axis value instead of all 40")
    ap.add_argument("--extras", action="store_true",
                    help="also write the %d exports with other settings (see EXTRAS; "
                    "--opsets and --sizes do not filter them)" % len(EXTRAS))
    ap.add_argument("--more", action="store_true",
                    help="also export and check the other torchvision classifiers of MORE (opsets 14 and 17)")
    ap.add_argument("--probes", action="store_true",
                    help="also write OUTDIR/probes/: exports the Go engine does not run yet")
    ap.add_argument("--force", action="store_true", help="re-export folders that already exist")
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--opsets", default=",".join(map(str, OPSETS)))
    ap.add_argument("--sizes", default=",".join(map(str, SIZES)))
    ap.add_argument("--check", metavar="BIN", help="run BIN check on every export and print a table")
    ap.add_argument("--table", metavar="FILE", help="with --check: also write the table to FILE")
    a = ap.parse_args()

    if inside_repo(a.outdir):
        raise SystemExit(f"torchvision_exports: {a.outdir} is inside the repository; "
                         "give a folder outside it, e.g. /tmp/csam-torchvision")
    models = [s for s in a.models.split(",") if s]
    opsets = {int(s) for s in a.opsets.split(",") if s}
    sizes = {int(s) for s in a.sizes.split(",") if s}
    for m in models:
        if m not in MODELS:
            raise SystemExit(f"torchvision_exports: --models {m}: want some of {', '.join(MODELS)}")
    if a.check and not os.access(a.check, os.X_OK):
        raise SystemExit(f"torchvision_exports: --check {a.check}: not an executable; "
                         "build it with: go build -o /tmp/csam-onnx ./cmd/csam-onnx")
    os.makedirs(a.outdir, exist_ok=True)
    torch.set_num_threads(2)

    start = time.monotonic()
    done = []
    for name in models:
        model = None
        for opset, bn, batch, size in combos(a.subset):
            if opset not in opsets or size not in sizes:
                continue
            if model is None:
                model = build(name)
            d, secs, skipped = export_one(name, model, a.outdir, opset, bn, batch, size, a.force)
            done.append((d, name, opset, bn, batch, size))
            state = "exists" if skipped else f"{secs:.1f}s"
            print(f"{os.path.basename(d)}\t{state}", flush=True)
    if a.more:
        for name in MORE:
            model = build(name)
            size = 224 if name in MORE_FIXED_224 else 64
            for opset in MORE_OPSETS:
                d, secs, skipped = export_one(name, model, a.outdir, opset, "bnfold", "dyn", size, a.force, check_bn=False)
                done.append((d, name, opset, "bnfold", "dyn", size))
                state = "exists" if skipped else f"{secs:.1f}s"
                print(f"{os.path.basename(d)}\t{state}", flush=True)
    if a.probes:
        write_probes(a.outdir, a.force)
    if a.extras:
        for name, opset, bn, batch, size, extra in EXTRAS:
            if name not in models:
                continue
            model = build(name, transform_input=extra == "tfinput")
            d, secs, skipped = export_one(name, model, a.outdir, opset, bn, batch, size, a.force, extra)
            done.append((d, f"{name}+{extra}", opset, bn, batch, size))
            state = "exists" if skipped else f"{secs:.1f}s"
            print(f"{os.path.basename(d)}\t{state}", flush=True)
    print(f"torchvision_exports: {len(done)} exports in {a.outdir} "
          f"({time.monotonic() - start:.0f}s; torch {torch.__version__}, "
          f"torchvision {torchvision.__version__}, onnx {onnx.__version__})", flush=True)
    if not a.check:
        return

    start = time.monotonic()
    header = ["model", "opset", "bn", "batch", "size", "input", "result", "max_abs_diff", "seconds"]
    rows = []
    out = open(a.table, "w") if a.table else None

    def emit(row):
        print("\t".join(row), flush=True)
        if out:
            print("\t".join(row), file=out, flush=True)

    emit(header)
    for d, name, opset, bn, batch, size in done:
        for mode in ("random", "stored"):
            row = check_one(a.check, d, name, opset, bn, batch, size, mode)
            rows.append(row)
            emit(row)
    if out:
        out.close()
    failed = sum(1 for r in rows if r[6] != "pass")
    print(f"torchvision_exports: {len(rows) - failed}/{len(rows)} checks pass "
          f"({time.monotonic() - start:.0f}s)")
    if failed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
