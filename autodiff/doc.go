// Package autodiff runs an ONNX graph forward and backward in float32.
//
// Compile turns a graph.Model and fixed input shapes into a Program: one
// Kernel per node (see Kernel for the contract), every buffer allocated
// once, constant sub-graphs (initializers, Constant, Shape and what is
// computed from them, such as PyTorch's dynamic-batch reshape chain)
// evaluated at compile time. Forward and Backward then run without
// allocating. Backward is reverse-mode: each kernel adds the gradient of
// the loss with respect to its inputs into their gradient buffers.
//
// Errors: anything a user's model or input can get wrong (unsupported ops,
// bad attributes, mismatched shapes) is returned from Compile, naming the
// node. Kernels panic only on programmer errors.
package autodiff
