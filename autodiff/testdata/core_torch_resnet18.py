# Peer figure for BenchmarkResNet18: one SGD training step (forward,
# softmax cross-entropy, backward, update) and one inference forward of
# CIFAR ResNet-18 (3x3 stem, [2,2,2,2] BasicBlocks, widths 64-512, GAP,
# FC 10) at batch 64 with 2 threads, in PyTorch (Debian python3-torch).
# Run with /usr/bin/python3; prints images/s and images per CPU-second
# (process CPU time), like the Go benchmark, so that both can be compared
# on a machine shared with other jobs.
import resource
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(2)
torch.manual_seed(1)


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.b1 = nn.BatchNorm2d(cout)
        self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.b2 = nn.BatchNorm2d(cout)
        self.short = None
        if stride != 1 or cin != cout:
            self.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.b1(self.c1(x)))
        y = self.b2(self.c2(y))
        return F.relu(y + (x if self.short is None else self.short(x)))


class ResNet18(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU())
        layers, cin = [], 64
        for s, w in enumerate([64, 128, 256, 512]):
            for i in range(2):
                layers.append(Block(cin, w, 2 if s > 0 and i == 0 else 1))
                cin = w
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(512, 10)

    def forward(self, x):
        x = self.layers(self.stem(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main():
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    model = ResNet18()
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    x = torch.randn(64, 3, 32, 32)
    y = torch.arange(64) % 10

    def train_step():
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()

    model.train()
    train_step()  # warm-up
    t0, c0 = time.time(), cpu()
    for _ in range(steps):
        train_step()
    t1, c1 = time.time(), cpu()
    print(f"torch train: {64 * steps / (t1 - t0):.2f} images/s, {64 * steps / (c1 - c0):.2f} images/CPU-s")
    model.eval()
    with torch.no_grad():
        model(x)
        t0, c0 = time.time(), cpu()
        for _ in range(steps):
            model(x)
        t1, c1 = time.time(), cpu()
    print(f"torch infer: {64 * steps / (t1 - t0):.2f} images/s, {64 * steps / (c1 - c0):.2f} images/CPU-s")


main()
