# PyTorch peer for BenchmarkTrainPeers: one SGD training step (forward,
# softmax cross-entropy, backward, update w -= 1e-3 g) of the CIFAR models
# that package models builds (same layers and channel counts; ReLU after
# the depthwise and expand convs of MobileNet-V2, as there), with 2 threads.
# Usage: /usr/bin/python3 torch_train_peers.py ARCH BATCH STEPS
# Prints "torch train: X images/s" (after one warm-up step).
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(2)
torch.manual_seed(1)


def cbr(cin, cout, k, s, p, g=1):
    return nn.Sequential(nn.Conv2d(cin, cout, k, s, p, groups=g, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


class Basic(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.a = cbr(cin, cout, 3, stride, 1)
        self.b = nn.Sequential(nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout))
        self.short = None
        if stride != 1 or cin != cout:
            self.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        return F.relu(self.b(self.a(x)) + (x if self.short is None else self.short(x)))


class ResNet(nn.Module):
    def __init__(self, widths, blocks):
        super().__init__()
        layers, cin = [cbr(3, widths[0], 3, 1, 1)], widths[0]
        for s, (w, n) in enumerate(zip(widths, blocks)):
            for i in range(n):
                layers.append(Basic(cin, w, 2 if s > 0 and i == 0 else 1))
                cin = w
        self.body = nn.Sequential(*layers)
        self.fc = nn.Linear(cin, 10)

    def forward(self, x):
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(self.body(x), 1), 1))


class Inverted(nn.Module):
    def __init__(self, cin, cout, t, stride):
        super().__init__()
        hid = cin * t
        layers = [] if t == 1 else [cbr(cin, hid, 1, 1, 0)]
        layers += [cbr(hid, hid, 3, stride, 1, hid), nn.Conv2d(hid, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.f = nn.Sequential(*layers)
        self.res = stride == 1 and cin == cout

    def forward(self, x):
        y = self.f(x)
        return y + x if self.res else y


class MobileNetV2(nn.Module):
    def __init__(self):
        super().__init__()
        layers, cin = [cbr(3, 32, 3, 1, 1)], 32
        for t, c, n, s in [(1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]:
            for i in range(n):
                layers.append(Inverted(cin, c, t, s if i == 0 else 1))
                cin = c
        layers.append(cbr(cin, 1280, 1, 1, 0))
        self.body = nn.Sequential(*layers)
        self.fc = nn.Linear(1280, 10)

    def forward(self, x):
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(self.body(x), 1), 1))


def build(arch):
    if arch == "resnet18":
        return ResNet([64, 128, 256, 512], [2, 2, 2, 2])
    if arch == "resnet20":
        return ResNet([16, 32, 64], [3, 3, 3])
    if arch == "mobilenetv2":
        return MobileNetV2()
    raise SystemExit(f"unknown arch {arch}")


def main():
    arch, batch, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    model = build(arch)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    x = torch.rand(batch, 3, 32, 32)
    y = torch.arange(batch) % 10

    def step():
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()

    step()  # warm-up
    t0 = time.time()
    for _ in range(steps):
        step()
    print(f"torch train: {batch * steps / (time.time() - t0):.2f} images/s")


main()
