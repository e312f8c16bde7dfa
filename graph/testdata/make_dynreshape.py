"""Makes testdata/dynreshape_op14: a tiny PyTorch 1.13 export with a
dynamic batch axis whose reshapes use x.size(0), so the exporter writes the
Shape -> Gather -> Unsqueeze -> Concat -> Reshape chain.

Run with Debian's python3-torch: /usr/bin/python3 testdata/make_dynreshape.py
"""
import os

import numpy as np
import onnx
import torch
from onnx import numpy_helper


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(4)
        self.fc = torch.nn.Linear(4 * 16, 5)

    def forward(self, x):
        y = torch.relu(self.bn(self.conv(x)))  # [B, 4, 8, 8]
        y = y.view(y.size(0), y.size(1), 8, 8)  # chain with two dims
        y = torch.nn.functional.max_pool2d(y, 2)  # [B, 4, 4, 4]
        y = y.reshape(y.size(0), -1)  # chain: [B, 64]
        return self.fc(y)


def main():
    torch.manual_seed(7)
    net = Net()
    with torch.no_grad():
        net.bn.running_mean.uniform_(-0.5, 0.5)
        net.bn.running_var.uniform_(0.5, 2.0)
        net.bn.weight.uniform_(0.5, 1.5)
        net.bn.bias.uniform_(-0.2, 0.2)
    net.eval()
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "dynreshape_op14")
    os.makedirs(os.path.join(out, "test_data_set_0"), exist_ok=True)
    x = torch.rand(2, 3, 8, 8)
    torch.onnx.export(
        net, x, os.path.join(out, "model.onnx"), opset_version=14,
        input_names=["input"], output_names=["logits"],
        dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
        training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False)
    with torch.no_grad():
        y = net(x)
    for name, t in (("input_0.pb", x), ("output_0.pb", y)):
        p = numpy_helper.from_array(t.numpy().astype(np.float32))
        with open(os.path.join(out, "test_data_set_0", name), "wb") as f:
            f.write(p.SerializeToString())
    m = onnx.load(os.path.join(out, "model.onnx"))
    print(sorted({n.op_type for n in m.graph.node}))


if __name__ == "__main__":
    main()
