// Package graph is csam-onnx's in-memory form of an ONNX model and the
// analyses and rewrites done on it.
//
// The IR (ir.go) mirrors the ONNX protobuf closely so that onnxio can read
// and write it losslessly: a Model holds one Graph; a Graph holds Nodes in
// file order, named Initializers, and the graph Inputs and Outputs. Values
// are identified by name: a node input names a graph input, an
// initializer, or another node's output; "" marks an omitted optional
// input. Nodes are not required to be stored in topological order (ONNX
// requires it, but hand-built and rewritten graphs may not be); Sort gives
// one.
//
// On top of the IR the package provides:
//
//   - Validate: structural checks that report every problem at once
//     (errors.Join of typed errors such as *UndefinedValueError and
//     *CycleError), so a user sees all that is wrong with a file in one go.
//   - Sort: a stable topological order (file order among independent nodes).
//   - InferShapes (and InferShapesWith, for graphs whose shapes depend on
//     an input's contents): static shapes of every value for concrete input
//     shapes,
//     for the operator set listed in the project's conformance README,
//     opsets 6 to 25; values that shapes depend on (Reshape's shape, Slice's
//     starts) are computed by a small internal evaluator. MACs counts the
//     multiply-accumulates of Conv, Gemm and MatMul from those shapes.
//   - Passes that rewrite a model in place: FoldConstants (and
//     FoldConstantsCount), FoldBatchNorm, UnfoldBatchNorm, RemoveIdentity
//     and RemoveUnused. Each first validates the model (and returns
//     Validate's error if it is invalid), leaves a graph that passes
//     Validate, never renames a graph input or output, and reports how many
//     rewrites it made. Ops a pass does not know are left alone.
//   - Small helpers for code that rewrites graphs: Model.Clone (a deep
//     copy to rewrite while keeping the original), Graph.Producers,
//     Graph.Consumers, Graph.IsGraphInput/IsGraphOutput,
//     Graph.RemoveInitializer, NodeKey.
//
// Constants. An initializer is a constant unless it is also listed as a
// graph input of an IR version 4 or later model, where that listing makes
// it a default a caller may override. Before IR 4 every initializer had to
// be listed as an input, so there the listing means nothing; passes that
// add or remove initializers in such models keep the input list in step.
//
// Conventions. Functions driven by a model read from a file return errors;
// they never panic on a malformed model. Error messages start with
// "graph: " and name the node (its name and op type) and the value at
// fault. Functions do not keep references to their arguments beyond the
// call, except that passes modify the model they are given; tensors of
// initializers a pass does not rewrite are shared, not copied. Nothing in
// the package is safe for concurrent use on the same Model.
//
// Limitations: sub-graphs (If, Loop, Scan attributes) are carried, not
// checked or rewritten: Validate does not look into them, and the passes
// only take care not to remove or rename a value a sub-graph reads.
package graph
