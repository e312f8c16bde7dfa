package runtime

import (
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/csam-onnx/csam-onnx/tensor"
)

// LatencyOptions configures MeasureLatency. A nil *LatencyOptions means
// the defaults.
type LatencyOptions struct {
	// Warmup runs are discarded (default 3): the first runs allocate
	// onnxruntime's buffers and fault their pages in.
	Warmup int
	// Runs is the number of timed runs (default 20).
	Runs int
	// Shape gives the dimensions after the batch one for inputs whose
	// declared shape has symbolic dimensions there; nil uses the declared
	// shape.
	Shape []int
}

// Latency is the time of one onnxruntime run at a batch size.
type Latency struct {
	Batch  int           `json:"batch"`
	Runs   int           `json:"runs"`
	Median time.Duration `json:"median_ns"`
	Min    time.Duration `json:"min_ns"`
	Mean   time.Duration `json:"mean_ns"`
	// ImagesPerSecond is Batch divided by the median.
	ImagesPerSecond float64 `json:"images_per_second"`
}

// MeasureLatency times s.Run on one batch of batch inputs (the model's
// first dimension is the batch): the median of opts.Runs runs after
// opts.Warmup untimed ones. Float inputs hold a fixed pattern of values in
// [0, 1], integer inputs zeros. A model whose batch dimension is fixed to
// another size gives an error.
func MeasureLatency(ctx context.Context, s *Session, batch int, opts *LatencyOptions) (Latency, error) {
	o := LatencyOptions{Warmup: 3, Runs: 20}
	if opts != nil {
		if opts.Warmup > 0 {
			o.Warmup = opts.Warmup
		}
		if opts.Runs > 0 {
			o.Runs = opts.Runs
		}
		o.Shape = opts.Shape
	}
	if batch < 1 {
		return Latency{}, fmt.Errorf("runtime: %s: latency batch %d, want ≥ 1", s.name, batch)
	}
	inputs := make([]*tensor.Tensor, len(s.inputs))
	for i, in := range s.inputs {
		t, err := latencyInput(in, batch, o.Shape)
		if err != nil {
			return Latency{}, fmt.Errorf("runtime: %s: %w", s.name, err)
		}
		inputs[i] = t
	}
	times := make([]time.Duration, 0, o.Runs)
	for i := 0; i < o.Warmup+o.Runs; i++ {
		if err := ctx.Err(); err != nil {
			return Latency{}, err
		}
		start := time.Now()
		if _, err := s.Run(inputs); err != nil {
			return Latency{}, err
		}
		if i >= o.Warmup {
			times = append(times, time.Since(start))
		}
	}
	slices.Sort(times)
	var sum time.Duration
	for _, t := range times {
		sum += t
	}
	med := times[len(times)/2]
	if len(times)%2 == 0 {
		med = (times[len(times)/2-1] + times[len(times)/2]) / 2
	}
	return Latency{
		Batch: batch, Runs: len(times), Median: med, Min: times[0],
		Mean:            sum / time.Duration(len(times)),
		ImagesPerSecond: float64(batch) / med.Seconds(),
	}, nil
}

func latencyInput(in IOInfo, batch int, rest []int) (*tensor.Tensor, error) {
	if in.Kind != "tensor" {
		return nil, fmt.Errorf("input %s: only tensor inputs can be timed", in)
	}
	if len(in.Shape) == 0 {
		return nil, fmt.Errorf("input %s: a batch needs rank ≥ 1", in)
	}
	if in.Shape[0] > 0 && in.Shape[0] != int64(batch) {
		return nil, fmt.Errorf("input %q has a fixed batch size %d, cannot time batch %d", in.Name, in.Shape[0], batch)
	}
	shape := []int{batch}
	if rest != nil {
		if len(rest) != len(in.Shape)-1 {
			return nil, fmt.Errorf("input %q has rank %d, the shape option %v gives %d dimensions after the batch", in.Name, len(in.Shape), rest, len(rest))
		}
		shape = append(shape, rest...)
	} else {
		for _, d := range in.Shape[1:] {
			if d < 0 {
				return nil, fmt.Errorf("input %s has a symbolic dimension after the batch; give its shape", in)
			}
			shape = append(shape, int(d))
		}
	}
	n := tensor.Numel(shape)
	t := &tensor.Tensor{DType: in.DType, Shape: shape}
	switch {
	case in.DType == tensor.Float32:
		t.F32 = make([]float32, n)
		for i := range t.F32 {
			t.F32[i] = float32(i%251) / 250
		}
	case in.DType == tensor.Float64:
		t.F64 = make([]float64, n)
		for i := range t.F64 {
			t.F64[i] = float64(i%251) / 250
		}
	case in.DType.IsInteger():
		t.I64 = make([]int64, n)
	default:
		return nil, fmt.Errorf("input %s: element type %s cannot be timed", in, in.DType)
	}
	return t, nil
}

// FileSize is the size of a model file on disk and gzip-compressed.
type FileSize struct {
	Bytes int64 `json:"bytes"`
	// Gzip is the size after compress/gzip at its default level (6, as
	// `gzip` uses): what unstructured sparsity saves in a compressed
	// download.
	Gzip int64 `json:"gzip_bytes"`
}

// ModelSize measures the model file at path (only that file: external data
// files are not counted).
func ModelSize(path string) (FileSize, error) {
	f, err := os.Open(path)
	if err != nil {
		return FileSize{}, fmt.Errorf("runtime: model size: %w", err)
	}
	defer f.Close()
	var cw countingWriter
	zw := gzip.NewWriter(&cw)
	n, err := io.Copy(zw, f)
	if err != nil {
		return FileSize{}, fmt.Errorf("runtime: model size: %s: %w", path, err)
	}
	if err := zw.Close(); err != nil {
		return FileSize{}, fmt.Errorf("runtime: model size: %s: %w", path, err)
	}
	return FileSize{Bytes: n, Gzip: cw.n}, nil
}

type countingWriter struct{ n int64 }

func (w *countingWriter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	return len(p), nil
}

// DefaultLatencyBatches are the batch sizes the report times: a single
// request and a throughput-sized batch.
var DefaultLatencyBatches = []int{1, 64}

// Artifact is what a shipped model file costs: its size and its latency in
// onnxruntime.
type Artifact struct {
	Path    string    `json:"path"`
	Size    FileSize  `json:"size"`
	Threads int       `json:"intra_op_threads"`
	Latency []Latency `json:"latency"`
}

// MeasureArtifact measures the model file at path: file and gzip size,
// and latency at each of batches (nil: DefaultLatencyBatches) in a session
// with sessOpts. A model with a fixed batch size is timed at that size
// only.
func MeasureArtifact(ctx context.Context, path string, batches []int, sessOpts *SessionOptions, latOpts *LatencyOptions) (*Artifact, error) {
	size, err := ModelSize(path)
	if err != nil {
		return nil, err
	}
	s, err := Open(path, sessOpts)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	a := &Artifact{Path: path, Size: size, Threads: DefaultIntraOpThreads}
	if sessOpts != nil && sessOpts.IntraOpThreads > 0 {
		a.Threads = sessOpts.IntraOpThreads
	}
	if batches == nil {
		batches = DefaultLatencyBatches
	}
	if len(s.inputs) > 0 && len(s.inputs[0].Shape) > 0 && s.inputs[0].Shape[0] > 0 {
		batches = []int{int(s.inputs[0].Shape[0])}
	}
	for _, b := range batches {
		l, err := MeasureLatency(ctx, s, b, latOpts)
		if err != nil {
			return nil, err
		}
		a.Latency = append(a.Latency, l)
	}
	return a, nil
}
