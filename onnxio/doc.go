// Package onnxio converts between ONNX protobuf files and the graph IR.
//
// # Reading and writing
//
// Decode and ReadFile turn ONNX bytes into a *graph.Model; Encode, Marshal
// and WriteFile turn it back. ReadFile also loads external data (see
// below); Decode does not, and leaves such tensors with a DType and Shape
// but no storage. WriteFile is atomic: it writes a temporary file in the
// destination folder, syncs it and renames it over the destination.
// DecodeTensor, EncodeTensor and ReadTensorFile handle the single-tensor
// input_K.pb / output_K.pb files of the ONNX backend tests.
//
// # Losslessness
//
// Decode followed by Marshal gives a protobuf message equal (proto.Equal)
// to the one read: the IR records which optional fields were present
// (Present maps), keeps fields it does not know as their wire bytes
// (Unknown), and carries fields it does not interpret as encoded messages
// (Opaque: training_info, functions, configuration, quantization
// annotations, node device configurations, sparse-tensor and type-proto
// attributes, non-tensor types; Functions decodes the model-local
// functions and InlineFunctions replaces their calls by their bodies).
// Tensor data is decoded by type: float32
// into Tensor.F32, double into F64, integer and bool types into I64
// (widened; uint64 keeps its bits), strings into Str, and every other type
// (float16, bfloat16, complex, float8, 4- and 2-bit types) into Raw as
// little-endian bytes. Initializer.Encoding records raw_data versus the
// typed field, external-data entries, data_location and segment. Two
// exceptions: a tensor whose external data ReadFile loaded is written
// inline as raw_data, and a sparse initializer whose Dense tensor a pass
// changed is written as a new COO sparse tensor (see Sparsify).
//
// # Checks on input
//
// Everything driven by the input returns an error, never a panic. Errors
// start with "onnxio: " and the file name when there is one, and name the
// tensor, node or attribute at fault. Input that is not an ONNX model at
// all (empty, truncated, an image, ...) wraps ErrNotONNX. IR versions
// MinIRVersion-MaxIRVersion and ai.onnx opsets MinOpset-MaxOpset (what
// onnxruntime 1.24.3 accepts) are enforced with a *VersionError unless
// ReadOptions.AnyVersion is set. Sizes are checked before anything is
// allocated: a tensor's dims must be non-negative and multiply to exactly
// the number of elements its data holds; files over MaxModelSize are
// refused; sparse initializers may together densify to at most 16 MiB plus
// 512 times the bytes read (and each to MaxSparseDenseElements), and
// their indices must be in range.
//
// # External data
//
// An external-data location must be a relative path to a file inside the
// model's folder: absolute paths and paths that leave the folder (also
// through symbolic links, as the folder is opened with os.OpenRoot) are
// refused, naming the tensor and the path. offset and length are
// honoured; length must match the tensor's dims. WriteFileExternal writes
// initializers of at least a threshold size into one side file
// "<model file>.data", 64-byte aligned.
//
// # Sparse initializers
//
// A sparse_initializer is kept as stored (Values, Indices, Dims) for a
// lossless round trip, and densified into SparseInitializer.Dense, which
// Graph.Initializer returns, so the rest of the program sees a dense
// tensor (Decode leaves Dense nil when the values are external data;
// ReadFile loads them and densifies). Indices may be flat ([NNZ]) or
// coordinates ([NNZ, rank]).
// Sparsify makes a COO sparse initializer with flat int64 indices from a
// dense one.
//
// # Conventions
//
// Functions never keep references to their arguments' slices beyond the
// call except where documented (Sparsify's Dense is its argument). The
// generated protobuf types in internal/onnxpb are an implementation
// detail; the IR is the API.
package onnxio
