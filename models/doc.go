// Package models builds the reference architectures csam-onnx trains and
// compresses, as ONNX graphs (opset 17, IR version 8): CIFAR-style
// ResNet-18, ResNet-20 and ResNet-8 (He et al. 2016), MobileNet-V2
// (Sandler et al. 2018) and GoogLeNet (Szegedy et al. 2015) in their common
// 32×32 variants, each with a width multiplier, input size, channel and
// class count.
//
// Every model normalizes its input in its first two nodes (Sub mean, Div
// std), so callers feed [0,1] pixels and every perturbation (corruptions,
// certification noise) acts on pixels. Output logits are named "logits".
// Weights are initialized from Config.Seed: Kaiming-normal (fan_out) for
// convolutions, PyTorch's default uniform for the classifier, identity
// BatchNormalization.
package models
