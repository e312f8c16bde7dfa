"""Writes small PyTorch 1.13 exports (dynamic batch, opsets 13 and 17) that
exercise the shape plumbing real exports contain: GoogLeNet's
transform_input (Gather, Unsqueeze, Mul, Add, Concat), view-flatten through
Shape/Gather/Unsqueeze/Concat/Reshape, MobileNet-style ReLU6 and mean over
H and W, reflect padding (built from Cast/ConstantOfShape/Slice chains),
Split, Transpose and Softmax; a small ConvNeXt/ViT-style block (LayerNorm,
erf GELU, class token, attention, ConvTranspose); GroupNorm, InstanceNorm,
F.normalize and amax; bilinear and nearest F.interpolate. Each folder has
the ONNX backend-test layout.

Run with Debian's python3-torch: /usr/bin/python3 make_exports.py
"""
import torch, torch.nn as nn, torch.nn.functional as F, os, onnx
from onnx import numpy_helper
torch.manual_seed(0)

class Inception(nn.Module):
    # GoogLeNet-style: transform_input, branches concatenated, view-flatten.
    def __init__(s):
        super().__init__()
        s.c1 = nn.Conv2d(3, 4, 1); s.c3 = nn.Conv2d(3, 4, 3, padding=1)
        s.pool = nn.MaxPool2d(3, 1, 1, ceil_mode=True)
        s.fc = nn.Linear(11 * 2 * 2, 5)
    def forward(s, x):
        x0 = torch.unsqueeze(x[:, 0], 1) * (0.229 / 0.5) + (0.485 - 0.5) / 0.5
        x1 = torch.unsqueeze(x[:, 1], 1) * (0.224 / 0.5) + (0.456 - 0.5) / 0.5
        x2 = torch.unsqueeze(x[:, 2], 1) * (0.225 / 0.5) + (0.406 - 0.5) / 0.5
        x = torch.cat((x0, x1, x2), 1)
        y = torch.cat([s.c1(x), s.c3(x), s.pool(x)[:, :4]], 1)
        y = F.adaptive_avg_pool2d(y, (2, 2))
        y = y.view(y.size(0), -1)
        y = y[:, 1:] if False else y
        return F.log_softmax(s.fc(y), dim=1)

class Mobile(nn.Module):
    def __init__(s):
        super().__init__()
        s.c = nn.Conv2d(3, 8, 3, stride=2, padding=1, groups=1)
        s.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        s.fc = nn.Linear(8, 4)
    def forward(s, x):
        y = F.relu6(s.c(x))
        y = y + F.relu6(s.dw(y))
        y = F.pad(y, (1, 2, 0, 1), mode="reflect")
        y = y.mean([2, 3])
        y = y.unsqueeze(1).squeeze(1)
        y = y[:, 0:8]
        a, b = torch.split(y, [3, 5], dim=1)
        y = torch.cat([b, a], 1).reshape(-1, 2, 4).transpose(1, 2).reshape(y.shape[0], -1)
        return torch.softmax(s.fc(y), -1), y.mean(1, keepdim=True) / 2 - y[:, :1]

class Former(nn.Module):
    # ConvNeXt/ViT-style: patch embedding, LayerNorm (decomposed into
    # ReduceMean/Sub/Pow/Sqrt/Div below opset 17, LayerNormalization at 17),
    # erf GELU, a class token expanded to the batch (Shape/Equal/Where/
    # Expand), one attention head, a ConvTranspose and a residual.
    def __init__(s):
        super().__init__()
        s.embed = nn.Conv2d(3, 8, 2, stride=2)
        s.up = nn.ConvTranspose2d(8, 8, 2, stride=2)
        s.down = nn.Conv2d(8, 8, 2, stride=2)
        s.tok = nn.Parameter(torch.randn(1, 1, 8))
        s.ln1 = nn.LayerNorm(8); s.ln2 = nn.LayerNorm(8)
        s.qkv = nn.Linear(8, 24); s.fc1 = nn.Linear(8, 16); s.fc2 = nn.Linear(16, 8)
        s.head = nn.Linear(8, 5)
        # Distinct LayerNorm parameters: the exporter merges initializers
        # with equal values, and the default ones and zeros would make ln1
        # and ln2 share theirs.
        with torch.no_grad():
            for ln in (s.ln1, s.ln2):
                ln.weight.uniform_(0.5, 1.5); ln.bias.uniform_(-0.5, 0.5)
    def forward(s, x):
        y = s.embed(x)                                  # N, 8, 4, 4
        y = y + s.down(F.gelu(s.up(y)))
        t = y.flatten(2).transpose(1, 2)                # N, 16, 8
        t = torch.cat([s.tok.expand(t.shape[0], -1, -1), t], 1)
        q, k, v = s.qkv(s.ln1(t)).chunk(3, -1)
        a = torch.softmax(q @ k.transpose(1, 2) / 8 ** 0.5, -1)
        t = t + a @ v
        t = t + s.fc2(F.gelu(s.fc1(s.ln2(t))))
        return s.head(t[:, 0])

class Norms(nn.Module):
    # GroupNorm (Reshape + InstanceNormalization), InstanceNorm2d,
    # F.normalize (ReduceL2, Clip, Expand, Div) and amax (ReduceMax).
    def __init__(s):
        super().__init__()
        s.c = nn.Conv2d(3, 8, 3, padding=1); s.gn = nn.GroupNorm(2, 8); s.inn = nn.InstanceNorm2d(8, affine=True)
        s.fc = nn.Linear(8, 5)
        with torch.no_grad():
            for p in (s.gn.weight, s.inn.weight):
                p.uniform_(0.5, 2)
            for p in (s.gn.bias, s.inn.bias):
                p.uniform_(-1, 1)
    def forward(s, x):
        y = F.relu(s.gn(s.c(x)))
        y = s.inn(y) * y
        y = F.normalize(y.mean((2, 3)), dim=1)
        return s.fc(y) * 5 + torch.amax(y, 1, keepdim=True)

class Resize(nn.Module):
    # F.interpolate: bilinear ×2 (half_pixel), bilinear to a size with
    # align_corners, nearest to a size (Resize).
    def __init__(s):
        super().__init__()
        s.c1 = nn.Conv2d(3, 4, 3, padding=1); s.c2 = nn.Conv2d(4, 4, 3, stride=2); s.fc = nn.Linear(4 * 5 * 6, 5)
    def forward(s, x):
        y = F.interpolate(s.c1(x), scale_factor=2, mode="bilinear", align_corners=False)
        y = F.interpolate(F.gelu(s.c2(y)), size=(9, 7), mode="bilinear", align_corners=True)
        y = F.interpolate(y, size=(5, 6), mode="nearest")
        return s.fc(y.flatten(1))

for name, mod, shape in [("incep", Inception(), (2, 3, 8, 8)), ("mobile", Mobile(), (3, 3, 8, 8)),
                         ("former", None, (2, 3, 8, 8)), ("norms", None, (2, 3, 8, 8)), ("resize", None, (2, 3, 8, 8))]:
    # The later modules are built after the earlier ones have drawn their
    # inputs, so that adding them left the earlier files as they were.
    mod = mod or {"former": Former, "norms": Norms, "resize": Resize}[name]()
    mod.eval()
    for opset in (13, 17):
        for dyn in (True,):
            d = f"{name}_op{opset}{'_dyn' if dyn else ''}"
            os.makedirs(d + "/test_data_set_0", exist_ok=True)
            x = torch.randn(*shape)
            kw = {}
            if dyn:
                kw["dynamic_axes"] = {"x": {0: "N"}}
            torch.onnx.export(mod, (x,), d + "/model.onnx", opset_version=opset, input_names=["x"], **kw)
            outs = mod(x)
            if not isinstance(outs, tuple):
                outs = (outs,)
            open(d + "/test_data_set_0/input_0.pb", "wb").write(numpy_helper.from_array(x.numpy(), "x").SerializeToString())
            for i, o in enumerate(outs):
                open(d + f"/test_data_set_0/output_{i}.pb", "wb").write(numpy_helper.from_array(o.detach().numpy()).SerializeToString())
            m = onnx.load(d + "/model.onnx")
            # PyTorch's gradient of loss = Σ_k w_k·out_k (w_j = ((7j) mod
            # 11)/11 - 1/2 over each output) for every parameter the export
            # keeps under its own name: grad_<name>.pb, which
            # TestTorchExportGradients compares with the engine's.
            mod.zero_grad()
            loss = 0
            for o in mod(x) if isinstance(mod(x), tuple) else (mod(x),):
                w = torch.tensor([((j * 7) % 11) / 11 - 0.5 for j in range(o.numel())]).reshape(o.shape)
                loss = loss + (o * w).sum()
            loss.backward()
            names = {i.name for i in m.graph.initializer}
            for pn, p in mod.named_parameters():
                if pn in names and p.grad is not None:
                    open(d + f"/test_data_set_0/grad_{pn}.pb", "wb").write(numpy_helper.from_array(p.grad.numpy(), pn).SerializeToString())
            print(d, sorted(set(n.op_type for n in m.graph.node)))
