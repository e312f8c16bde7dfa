// Package cli is csam-onnx's command tree (cobra).
//
// Layout, after the GitHub CLI: root.go holds the global flags (--ort-lib,
// --threads, --seed, -q) and the IOStreams; each verb has its own file with
// an Options struct, a NewCmdX(io, global, runF) constructor and an
// xRun(ctx, opts) function that does the work. Tests either call xRun
// directly or pass a runF that captures the parsed Options.
//
// Conventions:
//   - Machine output (tables, JSON) goes to IOStreams.Out; progress goes to
//     IOStreams.ErrOut and only when that is a terminal and -q is not set.
//   - Every command loads models through loadModel: onnxio.ReadFile,
//     onnxio.InlineFunctions (model-local functions become plain nodes),
//     then graph.Validate, so a broken file is refused the same way
//     everywhere.
//   - Errors are returned, never printed here; cmd/csam-onnx prints them on
//     one line (see OneLine) and maps them to exit codes: 0 ok, 1 error,
//     2 usage error or interrupted (*FlagError, context.Canceled),
//     3 check failed (*CheckFailedError).
package cli
