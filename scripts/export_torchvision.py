#!/usr/bin/python3
"""Export torchvision ResNet-18, GoogLeNet and MobileNet-V2 to ONNX for
`csam-onnx check` (issue 3: the engine must match onnxruntime on real
exports). Weights are random (seeded); nothing is downloaded.

Run with Debian's python3-torch and python3-torchvision:

    /usr/bin/python3 scripts/export_torchvision.py OUTDIR

The files are large (ResNet-18 is ~45 MB): keep OUTDIR out of the
repository (`make check-torchvision` uses $CSAM_ONNX_CACHE/torchvision or
~/.cache/csam-onnx/torchvision).

Variants cover opsets 13-17, BatchNormalization folded (PyTorch's default
export in eval mode) or kept (TrainingMode.PRESERVE), static or dynamic
batch, 32 or 224 pixel inputs.
"""
import os
import sys

import torch
import torchvision

# (name, opset, keep_bn, dynamic_batch, pixels)
VARIANTS = [
    ("op13_folded_static_224", 13, False, False, 224),
    ("op17_bn_dynbatch_32", 17, True, True, 32),
    ("op14_folded_dynbatch_32", 14, False, True, 32),
    ("op15_bn_static_224", 15, True, False, 224),
]

ARCHS = {
    "resnet18": lambda: torchvision.models.resnet18(weights=None, num_classes=10),
    "googlenet": lambda: torchvision.models.googlenet(
        weights=None, num_classes=10, aux_logits=False, init_weights=True),
    "mobilenet_v2": lambda: torchvision.models.mobilenet_v2(weights=None, num_classes=10),
}


def randomize_bn(model, gen):
    # Fresh BatchNorm layers are the identity (mean 0, var 1): give them
    # non-trivial statistics so folding and the BN kernel are exercised.
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(n, generator=gen) * 0.5 + 0.75)
            m.weight.data.copy_(torch.rand(n, generator=gen) * 0.5 + 0.75)
            m.bias.data.copy_(torch.randn(n, generator=gen) * 0.1)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: export_torchvision.py OUTDIR")
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for arch, make in ARCHS.items():
        for tag, opset, keep_bn, dyn, px in VARIANTS:
            path = os.path.join(out, f"{arch}_{tag}.onnx")
            if os.path.exists(path):
                continue
            torch.manual_seed(1)
            gen = torch.Generator().manual_seed(2)
            model = make().eval()
            with torch.no_grad():
                randomize_bn(model, gen)
            x = torch.randn(2, 3, px, px, generator=gen)
            kwargs = dict(
                opset_version=opset,
                input_names=["input"],
                output_names=["logits"],
                do_constant_folding=True,
            )
            if keep_bn:
                kwargs["training"] = torch.onnx.TrainingMode.PRESERVE
            if dyn:
                kwargs["dynamic_axes"] = {"input": {0: "batch"}, "logits": {0: "batch"}}
            tmp = path + ".tmp"
            with torch.no_grad():
                torch.onnx.export(model, x, tmp, **kwargs)
            os.replace(tmp, path)
            print(path, flush=True)


if __name__ == "__main__":
    main()
