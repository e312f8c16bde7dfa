"""Makes functions_convbn_op15: a tiny PyTorch 1.13 export in which every
ConvBNReLU instance is written as a call to a model-local ONNX function
(torch.onnx.export(..., export_modules_as_functions={ConvBNReLU}) at opset
15: ModelProto.functions, field 25). The block is used twice with different
shapes and strides; its ReLU6 clamp makes the exporter put Constant nodes
inside the function body. The reference output is PyTorch's own.

Run from the repository root with Debian's python3-torch:
    /usr/bin/python3 graph/testdata/functions_convbn_op15/make_model.py
"""
import os

import numpy as np
import onnx
import torch
from onnx import numpy_helper


class ConvBNReLU(torch.nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv = torch.nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn = torch.nn.BatchNorm2d(cout)

    def forward(self, x):
        return torch.nn.functional.relu6(self.bn(self.conv(x)))


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.block1 = ConvBNReLU(3, 8, 1)
        self.block2 = ConvBNReLU(8, 8, 2)
        self.pool = torch.nn.AdaptiveAvgPool2d(1)
        self.fc = torch.nn.Linear(8, 5)

    def forward(self, x):
        y = self.block2(self.block1(x))
        return self.fc(torch.flatten(self.pool(y), 1))


def main():
    torch.manual_seed(11)
    net = Net()
    with torch.no_grad():
        for bn in (net.block1.bn, net.block2.bn):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.2, 0.2)
    net.eval()
    out = os.path.dirname(os.path.abspath(__file__))
    os.makedirs(os.path.join(out, "test_data_set_0"), exist_ok=True)
    x = torch.rand(2, 3, 8, 8) * 4 - 1
    torch.onnx.export(
        net, x, os.path.join(out, "model.onnx"), opset_version=15,
        input_names=["input"], output_names=["logits"],
        export_modules_as_functions={ConvBNReLU},
        training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False)
    with torch.no_grad():
        y = net(x)
    for name, t in (("input_0.pb", x), ("output_0.pb", y)):
        p = numpy_helper.from_array(t.numpy().astype(np.float32))
        with open(os.path.join(out, "test_data_set_0", name), "wb") as f:
            f.write(p.SerializeToString())
    m = onnx.load(os.path.join(out, "model.onnx"))
    onnx.checker.check_model(m)
    print("graph:", [(n.domain, n.op_type) for n in m.graph.node])
    for f in m.functions:
        print("function:", f.domain, f.name, list(f.input), list(f.output),
              list(f.attribute), [n.op_type for n in f.node])


if __name__ == "__main__":
    main()
