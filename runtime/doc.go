// Package runtime verifies an exported ONNX model in onnxruntime: clean
// accuracy, accuracy under corruptions, the certificates of CSAM-SPEC.md
// §4 (CC-Cert and randomized smoothing), latency and file size. It knows
// nothing of how the model was made; everything it reports is measured on
// the file a user ships.
//
// # Sessions
//
// onnxruntime is reached through github.com/yalue/onnxruntime_go v1.27.0
// and the onnxruntime 1.24.3 shared library. FindLibrary locates the
// library (the --ort-lib flag, $ONNXRUNTIME_SHARED_LIBRARY_PATH, then the
// cache `make setup` fills, see CachedLibraryPath); Init loads it once per
// process and is idempotent for the same library. Open and OpenBytes
// create a Session whose inputs and outputs are discovered from the model
// (through a throw-away session with graph optimizations off, so discovery
// costs a parse, not a second optimization). Run takes and returns
// tensor.Tensor values in the order of Inputs and Outputs: outputs are
// allocated by onnxruntime and copied into Go memory the caller owns.
//
// The binding's known limits are guarded here: a model without inputs
// gives an error instead of the binding's panic; rank-0 outputs, which the
// binding cannot allocate, are pre-allocated; float16/bfloat16 outputs,
// which it truncates, are pre-allocated at their declared shape (or, when
// that is dynamic, the run is repeated at the shape the first run gave).
// Errors from onnxruntime become errors of this package in one function
// (ortError) and name the model they concern; a Session that fails to open
// releases everything it had created.
//
// # Evaluations
//
// Data comes as Batches, an iterator of Batch values (images [N, C, H, W]
// of float32 pixels in [0, 1], labels, optionally each sample's data-set
// index); SliceBatches serves an in-memory set, and any loader adapts in a
// few lines. Models normalize internally, so noise, corruptions and
// transforms act on [0, 1] pixels. A classifier is a model with one float32
// image input and logits [N, K] as its first output; models exported with a
// fixed batch size are run with a zero-padded last batch.
//
//   - Accuracy: clean top-1 accuracy (first maximum wins, as numpy).
//   - CorruptionSweep: accuracy per corruption and severity, mean accuracy,
//     unnormalized mCE, and mCE or relative mCE against a baseline sweep
//     (Hendrycks & Dietterich 2019). Corruptions come from package corrupt
//     through the Corruption interface.
//   - CertifyCC: CC-Cert (Pautov et al., AAAI 2022; CSAM-SPEC.md §4.1) with
//     the official code's defaults n = 100, k = 10, δ = 0.9 and the
//     temperature grid 𝒯 = linspace(1e-4, 1e4, 500) of its script (see
//     DefaultTemperatures for why this grid), the bound computed in log
//     space by CCCertBound, certified accuracy at ε ∈ {1e-2, 1e-3, 1e-4}.
//   - CertifySmoothing, CertifySmoothed, PredictSmoothed, SampleUnderNoise:
//     randomized smoothing (Cohen, Rosenfeld, Kolter 2019; CSAM-SPEC.md
//     §4.2) with Clopper–Pearson bounds (ClopperPearsonLower, via gonum's
//     Beta quantile), SciPy's exact two-sided binomial test (BinomTest),
//     certified accuracy at radii and the average certified radius.
//   - MeasureLatency, ModelSize, MeasureArtifact: median latency at batch 1
//     and 64 after warm-up, file size and gzip size.
//
// The pure mathematics (CCCertBound, ClopperPearsonLower, SmoothingRadius,
// MaxSmoothingRadius, BinomTest) is separate from the sampling loops, so it
// can be checked against independent computations.
//
// # Randomness, sharding and results
//
// Evaluations over a data set take a seed, and every sample draws from its
// own source seeded by the seed, the evaluation and the sample's data-set
// index: results do not depend on batch sizes, on the order of shards, or
// on which samples came before, so `--shard i/N` runs merged with
// MergeSweeps, MergeCC and MergeSmoothing equal one run. Single-image
// functions take a *rand.Rand. Results hold counts and per-sample records,
// not only fractions, and carry JSON tags for the report.
//
// # Conventions
//
// Long work takes a context first and stops when it is cancelled; no
// goroutine outlives the call that started it. Nothing here panics on bad
// input: models, data and options that do not fit give errors naming the
// model, the input or the option at fault. The pure functions panic only on
// arguments their callers validate (documented on each).
//
// The package is named runtime as the design fixes it; files that need Go's
// own runtime import it as goruntime.
package runtime
