package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/csam-onnx/csam-onnx/corrupt"
	"github.com/csam-onnx/csam-onnx/dataset"
	"github.com/csam-onnx/csam-onnx/graph"
	"github.com/csam-onnx/csam-onnx/report"
	"github.com/csam-onnx/csam-onnx/runtime"
)

// VerifyOptions are the inputs of `csam-onnx verify`.
type VerifyOptions struct {
	IO     *IOStreams
	Global *GlobalOptions

	Model       string
	Baseline    string
	Data        string
	Output      string
	Corruptions string
	Severities  string
	Certify     string
	CCTransform string
	CCN, CCK    int
	CCDelta     float64
	CCGrid      int
	Sigma       float64
	N0, N       int
	Alpha       float64
	Subset      int
	CertSubset  int
	Shard       string
	Latency     bool
	Batch       int
	Args        []string

	corruptions []string
	severities  []int
	shard       [2]int
	Norm        inputNormFlags
	Loading     dataFlags
}

// NewCmdVerify returns the verify command.
func NewCmdVerify(ios *IOStreams, g *GlobalOptions, runF func(context.Context, *VerifyOptions) error) *cobra.Command {
	opts := &VerifyOptions{IO: ios, Global: g}
	cmd := &cobra.Command{
		Use:   "verify <model.onnx> --data SPEC [--baseline dense.onnx] -o report/",
		Short: "Measure clean accuracy, corruption robustness and certified robustness of an ONNX file in onnxruntime",
		Long: `Verify what a model file delivers, by running that file in onnxruntime:

  - clean accuracy on the data's test split (--subset: N images spread
    evenly over it);
  - accuracy under the CIFAR-10-C-style corruptions (regenerated in Go, not
    the released files) at the chosen severities, their mean and the
    unnormalized mCE (--corruptions all|none|NAME,...);
  - certified robustness (--certify): CC-Cert (Pautov et al. 2022) against
    random transforms (--cc-transform) at ε = 1e-2, 1e-3, 1e-4, and/or
    randomized smoothing (Cohen et al. 2019) with --sigma, --n0, --n, --alpha;
    on --cert-subset images spread evenly over the test set;
  - latency at batch 1 and 64, file and gzip sizes, per-layer sparsity.

With --baseline the same is measured for a second model (usually the dense
model) side by side. The report folder gets report.json, report.md,
report.html and the plots. --shard i/N measures only the i-th of N slices of
the images and writes raw results that 'csam-onnx merge' combines.`,
		Example: "  csam-onnx verify out/m.csam.onnx --data fashion-mnist --baseline models/fmnist_resnet8.onnx --subset 1000 -o out/report",
		Args:    exactArgs(1, "one model file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Model = args[0]
			opts.Args = os.Args
			if err := opts.parse(); err != nil {
				return err
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			err := verifyRun(cmd.Context(), opts)
			if errors.Is(err, context.Canceled) {
				return fmt.Errorf("verify: interrupted; no report written, rerun the same command: %w", err)
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Data, "data", "", "data set spec; its test split is used")
	f.StringVarP(&opts.Output, "output", "o", "", "report folder (default: the model's path with .report for .onnx)")
	f.StringVar(&opts.Baseline, "baseline", "", "a second model measured side by side (e.g. the dense one)")
	f.StringVar(&opts.Corruptions, "corruptions", "all", "all (the 15 benchmark corruptions), none, or a comma-separated list")
	f.StringVar(&opts.Severities, "severities", "1-5", "severities: a range 1-5 or a list 1,3,5")
	f.StringVar(&opts.Certify, "certify", "cc-cert", "cc-cert, smoothing, both (cc-cert,smoothing) or none")
	f.StringVar(&opts.CCTransform, "cc-transform", "brightness:0.2,contrast:0.8", "CC-Cert transform distribution (families: "+strings.Join(corrupt.TransformFamilies(), ", ")+")")
	f.IntVar(&opts.CCN, "cc-n", 100, "CC-Cert samples per group n")
	f.IntVar(&opts.CCK, "cc-k", 10, "CC-Cert groups k")
	f.Float64Var(&opts.CCDelta, "cc-delta", 0.9, "CC-Cert δ")
	f.IntVar(&opts.CCGrid, "cc-grid", 20, "CC-Cert empirical accuracy: also classify every image at each point of a grid of N values per transform parameter, as the official script (0: off; transforms with awgn or corruption have no grid)")
	f.Float64Var(&opts.Sigma, "sigma", 0.25, "randomized smoothing noise σ on [0,1] pixels")
	f.IntVar(&opts.N0, "n0", 100, "randomized smoothing selection samples")
	f.IntVar(&opts.N, "n", 1000, "randomized smoothing estimation samples (Cohen et al. use 100000)")
	f.Float64Var(&opts.Alpha, "alpha", 0.001, "randomized smoothing failure probability")
	f.IntVar(&opts.Subset, "subset", 0, "use N test images evenly spaced over the test set (0: all)")
	f.IntVar(&opts.CertSubset, "cert-subset", 100, "certify N test images spread evenly over the (sub)set (0: all)")
	f.StringVar(&opts.Shard, "shard", "", "i/N: measure only slice i (0-based) of N")
	f.BoolVar(&opts.Latency, "latency", true, "measure latency at batch 1 and 64")
	f.IntVar(&opts.Batch, "batch", 100, "images per onnxruntime run")
	opts.Norm.register(f)
	opts.Loading.register(f)
	return cmd
}

func (o *VerifyOptions) parse() error {
	if o.Data == "" {
		return FlagErrorf("verify: --data is required")
	}
	if o.Output == "" {
		o.Output = besideModel(o.Model, ".report")
	}
	if err := o.Norm.check("verify"); err != nil {
		return err
	}
	switch o.Corruptions {
	case "all":
		o.corruptions = corrupt.Benchmark()
	case "none", "":
	default:
		for _, n := range strings.Split(o.Corruptions, ",") {
			info, err := corrupt.Describe(n)
			if err != nil {
				return &FlagError{Err: fmt.Errorf("--corruptions: %w", err)}
			}
			// The canonical name: the sweep's cells and the list of
			// corruptions left out of the means use it.
			if slices.Contains(o.corruptions, info.Name) {
				return FlagErrorf("--corruptions %q names %s twice", o.Corruptions, info.Name)
			}
			o.corruptions = append(o.corruptions, info.Name)
		}
	}
	sev, err := parseSeverities(o.Severities)
	if err != nil {
		return err
	}
	o.severities = sev
	for _, c := range strings.Split(o.Certify, ",") {
		switch strings.TrimSpace(c) {
		case "cc-cert", "smoothing", "none", "both":
		default:
			return FlagErrorf("--certify %q: want cc-cert, smoothing, both or none", o.Certify)
		}
	}
	if o.certCC() {
		if _, err := corrupt.ParseTransform(o.CCTransform); err != nil {
			return &FlagError{Err: fmt.Errorf("--cc-transform: %w", err)}
		}
	}
	if o.shard, err = parseShard(o.Shard); err != nil {
		return err
	}
	if o.Batch < 1 || o.Subset < 0 || o.CertSubset < 0 {
		return FlagErrorf("verify: --batch must be ≥ 1, --subset and --cert-subset ≥ 0")
	}
	// The library reads 0 as "the default"; on the command line a 0
	// would silently run something else (--n 0 ran 100,000 samples).
	switch {
	case o.CCN < 1 || o.CCK < 1:
		return FlagErrorf("verify: --cc-n %d and --cc-k %d must be at least 1", o.CCN, o.CCK)
	case o.CCGrid < 0 || o.CCGrid == 1:
		return FlagErrorf("verify: --cc-grid %d: want 0 (off) or at least 2 points per parameter", o.CCGrid)
	case !(o.CCDelta > 0 && o.CCDelta <= 1):
		return FlagErrorf("verify: --cc-delta %v: want 0 < δ ≤ 1", o.CCDelta)
	case !(o.Sigma > 0) || math.IsInf(o.Sigma, 0):
		return FlagErrorf("verify: --sigma %v: want a positive noise level", o.Sigma)
	case o.N0 < 1 || o.N < 1:
		return FlagErrorf("verify: --n0 %d and --n %d must be at least 1", o.N0, o.N)
	case !(o.Alpha > 0 && o.Alpha < 1):
		return FlagErrorf("verify: --alpha %v: want 0 < α < 1", o.Alpha)
	}
	return nil
}

// parseShard reads a --shard value i/N (0 ≤ i < N); "" is the whole
// run, 0/1.
func parseShard(v string) ([2]int, error) {
	if v == "" {
		return [2]int{0, 1}, nil
	}
	i, n, ok := strings.Cut(v, "/")
	a, err1 := strconv.Atoi(i)
	b, err2 := strconv.Atoi(n)
	if !ok || err1 != nil || err2 != nil || b < 1 || a < 0 || a >= b {
		return [2]int{}, FlagErrorf("--shard %q: want i/N with 0 ≤ i < N, e.g. 0/4", v)
	}
	return [2]int{a, b}, nil
}

func (o *VerifyOptions) certCC() bool {
	return strings.Contains(o.Certify, "cc-cert") || strings.Contains(o.Certify, "both")
}

func (o *VerifyOptions) certSmoothing() bool {
	return strings.Contains(o.Certify, "smoothing") || strings.Contains(o.Certify, "both")
}

func parseSeverities(s string) ([]int, error) {
	bad := FlagErrorf("--severities %q: want a range like 1-5 or a list like 1,3,5 (severities 1..5)", s)
	var out []int
	if a, b, ok := strings.Cut(s, "-"); ok {
		lo, err1 := strconv.Atoi(a)
		hi, err2 := strconv.Atoi(b)
		if err1 != nil || err2 != nil || lo < 1 || hi > corrupt.MaxSeverity || lo > hi {
			return nil, bad
		}
		for v := lo; v <= hi; v++ {
			out = append(out, v)
		}
		return out, nil
	}
	for _, p := range strings.Split(s, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || v < 1 || v > corrupt.MaxSeverity {
			return nil, bad
		}
		out = append(out, v)
	}
	return out, nil
}

// RawResult is what one (shard of a) verify run measured, before the
// report is derived. merge adds shards' RawResults together.
type RawResult struct {
	Schema     string    `json:"schema"`
	Shard      [2]int    `json:"shard"`
	Command    string    `json:"command"`
	Seed       uint64    `json:"seed"`
	Data       string    `json:"data"`
	DataNote   string    `json:"data_note"`
	ORTVersion string    `json:"onnxruntime_version"`
	Model      ModelRaw  `json:"model"`
	Baseline   *ModelRaw `json:"baseline,omitempty"`
	Severities []int     `json:"severities"`
	Excluded   []string  `json:"excluded_from_means,omitempty"`
	// Subset and CertSubset are the --subset and --cert-subset the run
	// was given (merge refuses shards whose differ).
	Subset     int `json:"subset,omitempty"`
	CertSubset int `json:"cert_subset,omitempty"`
}

// ModelRaw is one model's raw measurements.
type ModelRaw struct {
	Facts       report.Model             `json:"facts"`
	Clean       runtime.Eval             `json:"clean"`
	Sweep       *runtime.Sweep           `json:"sweep,omitempty"`
	CCTransform string                   `json:"cc_transform,omitempty"`
	CC          *runtime.CCCertResult    `json:"cc_cert,omitempty"`
	Smoothing   *runtime.SmoothingResult `json:"smoothing,omitempty"`
}

const rawSchema = "csam-onnx/verify-raw/v1"

func verifyRun(ctx context.Context, o *VerifyOptions) (err error) {
	lib, err := runtime.FindLibrary(o.Global.ORTLib)
	if err != nil {
		return err
	}
	if err := runtime.Init(lib); err != nil {
		return err
	}
	mm, err := loadModel(o.Model)
	if err != nil {
		return err
	}
	if err := classifierIO(mm.Graph); err != nil {
		return fmt.Errorf("%s: %w", o.Model, err)
	}
	if err := evalMode(mm, o.Model, false, nil, "verify", evalCopyHint(o.Model, o.Data)); err != nil {
		return err
	}
	mconv, err := o.Norm.conv(mm, o.Model)
	if err != nil {
		return err
	}
	var bconv inputConv
	var bm *graph.Model
	if o.Baseline != "" {
		bm, err = loadModel(o.Baseline)
		if err != nil {
			return err
		}
		if err := classifierIO(bm.Graph); err != nil {
			return fmt.Errorf("--baseline %s: %w", o.Baseline, err)
		}
		if err := evalMode(bm, o.Baseline, false, nil, "verify", evalCopyHint(o.Baseline, o.Data)); err != nil {
			return fmt.Errorf("--baseline %w", err)
		}
		if err := sameTask(o.Model, o.Baseline); err != nil {
			return err
		}
		var note, warn string
		bconv, note, warn, err = o.Norm.baselineConv(bm, o.Baseline, fileSHA256(o.Baseline), mm, o.Model, mconv)
		if err != nil {
			return err
		}
		if note != "" {
			progressf(o.IO, o.Global, "%s", note)
		}
		if warn != "" {
			fmt.Fprintln(o.IO.ErrOut, warn)
		}
	}
	undo, err := writableDir("-o", o.Output, o.Output)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			undo()
		}
	}()
	test, err := o.Loading.with("verify", o.IO.ErrOut).load(ctx, o.Data, "test")
	if err != nil {
		return err
	}
	note := test.Title
	if note == "" {
		note = test.Name
	}
	if o.Subset > 0 && o.Subset < test.Len() {
		// Evenly spaced, so every class is represented even when the
		// files are sorted by class.
		test = test.Select(spread(test.Len(), o.Subset))
		note += fmt.Sprintf("; %d test images evenly spaced over the test set", test.Len())
	}
	cert := test
	if o.CertSubset > 0 && o.CertSubset < test.Len() {
		cert = test.Select(spread(test.Len(), o.CertSubset))
	}
	lo, hi := shardRange(test.Len(), o.shard)
	clo, chi := shardRange(cert.Len(), o.shard)
	test = test.Select(seq(lo, hi))
	cert = cert.Select(seq(clo, chi))

	raw := &RawResult{Schema: rawSchema, Shard: o.shard, Command: strings.Join(o.Args, " "), Seed: o.Global.Seed,
		Data: o.Data, DataNote: note, ORTVersion: runtime.Version(), Severities: o.severities, Subset: o.Subset, CertSubset: o.CertSubset}
	for _, n := range o.corruptions {
		if info, _ := corrupt.Describe(n); info.Procedural {
			raw.Excluded = append(raw.Excluded, n)
		}
	}
	measure := func(path string, m *graph.Model, c inputConv) (*ModelRaw, error) {
		progressf(o.IO, o.Global, "verify: measuring %s", path)
		return measureModel(ctx, o, path, m, c, test, cert, lo, clo)
	}
	m, err := measure(o.Model, mm, mconv)
	if err != nil {
		return err
	}
	raw.Model = *m
	if o.Baseline != "" {
		if raw.Baseline, err = measure(o.Baseline, bm, bconv); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(o.Output, 0o755); err != nil {
		return err
	}
	name := "raw.json"
	if o.shard[1] > 1 {
		name = fmt.Sprintf("raw-%d-of-%d.json", o.shard[0], o.shard[1])
	}
	if err := writeJSON(filepath.Join(o.Output, name), raw); err != nil {
		return err
	}
	if o.shard[1] > 1 {
		fmt.Fprintf(o.IO.ErrOut, "wrote shard %d of %d to %s; combine the shards with 'csam-onnx merge'\n", o.shard[0], o.shard[1], filepath.Join(o.Output, name))
		return nil
	}
	return writeReport(o.IO, o.Output, raw)
}

// measureModel measures one model file. testOffset and certOffset are the
// indices of the shard's first image in the whole test and certification
// sets: random draws are seeded per image index, so a sharded run gives
// exactly the numbers of an unsharded one.
func measureModel(ctx context.Context, o *VerifyOptions, path string, m *graph.Model, c inputConv, test, cert *dataset.Dataset, testOffset, certOffset int) (*ModelRaw, error) {
	facts, err := modelFacts(path, m)
	if err != nil {
		return nil, err
	}
	norm, nhwc := c.norm, c.nhwc
	// The report says which normalization the figures were measured with.
	maps.Copy(facts.Metadata, inputMetadata(norm, nhwc)) // modelFacts made the map
	sess, err := runtime.Open(path, &runtime.SessionOptions{IntraOpThreads: o.Global.Threads, Normalize: norm, ChannelsLast: nhwc})
	if err != nil {
		return nil, err
	}
	defer sess.Close()
	r := &ModelRaw{}
	shape := sessInputShape(sess)
	if nhwc && len(shape) == 3 {
		shape = []int{shape[2], shape[0], shape[1]}
	}
	if len(shape) == 3 {
		var noted bool
		test = fitChannels(test, shape[0], o.Data, "verify", o.IO.ErrOut, &noted)
		cert = fitChannels(cert, shape[0], o.Data, "verify", o.IO.ErrOut, &noted)
	}
	if err := test.Fits(shape, 0); err != nil {
		return nil, fmt.Errorf("--data %s does not fit %s: %w", o.Data, path, err)
	}
	if note := test.ClassNote(outputClasses(m)); note != "" {
		fmt.Fprintf(o.IO.ErrOut, "verify: note: %s, --data %s: %s\n", path, o.Data, note)
	}
	if o.Latency && o.shard[0] == 0 {
		facts.LatencyMs = map[string]float64{}
		batches := []int{1, 64}
		if in := sess.Inputs(); len(in) > 0 && len(in[0].Shape) > 0 && in[0].Shape[0] > 0 {
			batches = []int{int(in[0].Shape[0])} // the model fixes its batch size
		}
		for _, b := range batches {
			lat, err := runtime.MeasureLatency(ctx, sess, b, nil)
			if err != nil {
				return nil, err
			}
			facts.LatencyMs[strconv.Itoa(b)] = float64(lat.Median.Microseconds()) / 1000
		}
	}
	r.Facts = facts
	if len(o.corruptions) == 0 {
		if r.Clean, err = runtime.Accuracy(ctx, sess, ortBatches(ctx, test, o.Batch), o.Batch); err != nil {
			return nil, err
		}
	}
	if len(o.corruptions) > 0 {
		var cs []runtime.Corruption
		for _, n := range o.corruptions {
			c, err := corrupt.Lookup(n)
			if err != nil {
				return nil, err
			}
			cs = append(cs, c)
		}
		r.Sweep, err = runtime.CorruptionSweep(ctx, sess, runtime.OffsetBatches(ortBatches(ctx, test, o.Batch), testOffset), cs, &runtime.SweepOptions{
			Severities: o.severities, Seed: o.Global.Seed, Batch: o.Batch, Workers: o.Global.Threads})
		if err != nil {
			return nil, err
		}
		r.Clean = r.Sweep.Clean
	}
	if o.certCC() && cert.Len() > 0 {
		tr, _ := corrupt.ParseTransform(o.CCTransform)
		fn, err := tr.Sampler(cert.C, cert.H, cert.W)
		if err != nil {
			return nil, err
		}
		r.CCTransform = tr.String()
		ccOpts := &runtime.CCCertOptions{N: o.CCN, K: o.CCK, Delta: o.CCDelta, Seed: o.Global.Seed, Probabilities: outputIsSoftmax(m)}
		if o.CCGrid > 0 {
			if size, err := tr.GridSize(o.CCGrid); err == nil {
				if ccOpts.Grid, err = tr.GridSampler(o.CCGrid, cert.C, cert.H, cert.W); err != nil {
					return nil, err
				}
				ccOpts.GridPoints = size
			} else if path == o.Model {
				fmt.Fprintf(o.IO.ErrOut, "verify: note: no CC-Cert empirical accuracy: %v\n", err)
			}
		}
		r.CC, err = runtime.CertifyCC(ctx, sess, runtime.OffsetBatches(ortBatches(ctx, cert, o.Batch), certOffset), fn, ccOpts)
		if err != nil {
			return nil, err
		}
	}
	if o.certSmoothing() && cert.Len() > 0 {
		r.Smoothing, err = runtime.CertifySmoothing(ctx, sess, runtime.OffsetBatches(ortBatches(ctx, cert, o.Batch), certOffset),
			&runtime.SmoothingOptions{Sigma: o.Sigma, N0: o.N0, N: o.N, Alpha: o.Alpha, Batch: 500, Seed: o.Global.Seed})
		if err != nil {
			return nil, err
		}
	}
	return r, nil
}

// outputIsSoftmax reports whether the model's first output is a Softmax's
// (probabilities, not scores), looking back through ops that only
// reshape (a Softmax over [N, K, 1, 1] flattened afterwards, say).
func outputIsSoftmax(m *graph.Model) bool {
	if len(m.Graph.Outputs) == 0 {
		return false
	}
	producer := m.Graph.Producers()
	v := m.Graph.Outputs[0].Name
	for range len(m.Graph.Nodes) {
		n := producer[v]
		switch {
		case n == nil:
			return false
		case n.OpType == "Softmax":
			return true
		case slices.Contains([]string{"Identity", "Flatten", "Reshape", "Squeeze"}, n.OpType) && len(n.Inputs) > 0:
			v = n.Inputs[0]
		default:
			return false
		}
	}
	return false
}

// sameTask refuses a baseline that is not a classifier of the same images
// and classes as the model.
func sameTask(model, baseline string) error {
	a, err := runtime.Open(model, nil)
	if err != nil {
		return err
	}
	defer a.Close()
	b, err := runtime.Open(baseline, nil)
	if err != nil {
		return err
	}
	defer b.Close()
	if err := runtime.SameTask(a, b); err != nil {
		return &FlagError{Err: fmt.Errorf("--baseline %s cannot be compared with %s: %w", baseline, model, err)}
	}
	return nil
}

// sessInputShape is the session's first input shape after the batch
// dimension.
func sessInputShape(s *runtime.Session) []int {
	in := s.Inputs()
	if len(in) == 0 || len(in[0].Shape) < 2 {
		return nil
	}
	out := make([]int, len(in[0].Shape)-1)
	for i, d := range in[0].Shape[1:] {
		out[i] = int(d)
	}
	return out
}

// modelFacts reads what a report says about a file: hashes, sizes,
// parameter counts and per-layer sparsity of Conv/Gemm/MatMul weights.
func modelFacts(path string, m *graph.Model) (report.Model, error) {
	f := report.Model{Path: path}
	b, err := os.ReadFile(path)
	if err != nil {
		return f, err
	}
	sum := sha256.Sum256(b)
	f.SHA256 = hex.EncodeToString(sum[:])
	size, err := runtime.ModelSize(path)
	if err != nil {
		return f, err
	}
	f.Bytes, f.GzipBytes = size.Bytes, size.Gzip
	var prunable, zeros int64
	for _, l := range prunableWeights(m.Graph) {
		in := m.Graph.Initializer(l)
		z := int64(0)
		for _, v := range in.Value.F32 {
			if v == 0 {
				z++
			}
		}
		n := int64(len(in.Value.F32))
		prunable += n
		zeros += z
		f.Layers = append(f.Layers, report.Layer{Name: l, Params: n, Sparsity: float64(z) / float64(max(n, 1))})
	}
	for _, in := range allInitializers(m.Graph) {
		f.Params += int64(in.Value.Len())
		if in.Value.F32 != nil {
			for _, v := range in.Value.F32 {
				if v != 0 {
					f.Nonzero++
				}
			}
		} else {
			f.Nonzero += int64(in.Value.Len())
		}
	}
	if prunable > 0 {
		f.Sparsity = float64(zeros) / float64(prunable)
	}
	f.Metadata = map[string]string{}
	for _, kv := range m.Metadata {
		if strings.HasPrefix(kv.Key, "csam.") && kv.Key != "csam.layers" {
			f.Metadata[kv.Key] = kv.Value
		}
	}
	return f, nil
}

func allInitializers(g *graph.Graph) []*graph.Initializer {
	out := slices.Clone(g.Initializers)
	for _, s := range g.SparseInitializers {
		if s.Dense != nil {
			out = append(out, s.Dense)
		}
	}
	return out
}

// prunableWeights names the float initializers that are Conv,
// ConvTranspose or Gemm weights or MatMul operands, in graph order (the
// layers csam.SelectLayers may prune).
func prunableWeights(g *graph.Graph) []string {
	var out []string
	seen := map[string]bool{}
	for _, n := range g.Nodes {
		var cands []string
		switch n.OpType {
		case "Conv", "ConvTranspose", "Gemm":
			if len(n.Inputs) > 1 {
				cands = n.Inputs[1:2]
			}
		case "MatMul":
			cands = n.Inputs
		}
		for _, c := range cands {
			if in := g.Initializer(c); in != nil && in.Value.F32 != nil && !seen[c] {
				seen[c] = true
				out = append(out, c)
			}
		}
	}
	return out
}

// spread picks k indices evenly over [0, n), as Cohen et al.'s --skip.
func spread(n, k int) []int {
	out := make([]int, k)
	for i := range out {
		out[i] = i * n / k
	}
	return out
}

func shardRange(n int, sh [2]int) (int, int) { return sh[0] * n / sh[1], (sh[0] + 1) * n / sh[1] }

func seq(lo, hi int) []int {
	out := make([]int, hi-lo)
	for i := range out {
		out[i] = lo + i
	}
	return out
}

// writeReport derives the report from raw results and writes it.
func writeReport(ios *IOStreams, dir string, raw *RawResult) error {
	r := buildReport(raw)
	if err := report.WriteDir(dir, r); err != nil {
		return err
	}
	fmt.Fprintf(ios.ErrOut, "wrote %s: clean accuracy %.2f%%", filepath.Join(dir, "report.html"), 100*r.Clean.Accuracy)
	if r.Corruptions != nil {
		fmt.Fprintf(ios.ErrOut, ", mean corruption accuracy %.2f%%", 100*r.Corruptions.Mean)
	}
	if r.CCCert != nil {
		for i, e := range r.CCCert.Eps {
			if e == 1e-3 {
				fmt.Fprintf(ios.ErrOut, ", CC-Cert certified %.2f%% at ε=1e-3", 100*r.CCCert.Certified[i])
			}
		}
	}
	fmt.Fprintln(ios.ErrOut)
	return nil
}

func buildReport(raw *RawResult) *report.Report {
	r := &report.Report{Tool: "csam-onnx " + Version, Command: raw.Command, ORTVersion: raw.ORTVersion, Seed: raw.Seed,
		Data: raw.Data, DataNote: raw.DataNote, Model: raw.Model.Facts}
	r.Clean = report.Clean{Images: raw.Model.Clean.N, Accuracy: raw.Model.Clean.Accuracy()}
	b := raw.Baseline
	if b != nil {
		r.Baseline = &b.Facts
		v := b.Clean.Accuracy()
		r.Clean.BaselineAccuracy = &v
	}
	if raw.Model.Sweep != nil && len(raw.Model.Sweep.Cells) > 0 {
		c := &report.Corruptions{Images: raw.Model.Clean.N, Severities: raw.Severities, Excluded: raw.Excluded,
			Note: "CIFAR-10-C-style corruptions regenerated in Go (not the released CIFAR-10-C files); motion blur, snow and spatter approximate their ImageMagick/OpenCV originals; frost uses procedural textures."}
		for i, cell := range raw.Model.Sweep.Cells {
			info, _ := corrupt.Describe(cell.Corruption)
			it := report.CorruptionItem{Name: cell.Corruption, Family: string(info.Family), Severity: cell.Severity, Accuracy: cell.Accuracy()}
			if b != nil && b.Sweep != nil && i < len(b.Sweep.Cells) {
				v := b.Sweep.Cells[i].Accuracy()
				it.BaselineAccuracy = &v
			}
			c.Items = append(c.Items, it)
		}
		c.Mean, c.MCE = sweepMeans(raw.Model.Sweep.Cells, raw.Excluded)
		if b != nil && b.Sweep != nil && len(b.Sweep.Cells) == len(raw.Model.Sweep.Cells) {
			mean, mce := sweepMeans(b.Sweep.Cells, raw.Excluded)
			c.BaselineMean, c.BaselineMCE = &mean, &mce
			if mce > 0 {
				rel := c.MCE / mce
				c.RelativeMCE = &rel
			}
			ms, bs := withoutCorruptions(raw.Model.Sweep, raw.Excluded), withoutCorruptions(b.Sweep, raw.Excluded)
			if len(ms.Cells) > 0 {
				if v, err := ms.MCEVs(bs, false); err == nil {
					c.MCEVsBaseline = &v
				}
				if v, err := ms.MCEVs(bs, true); err == nil {
					c.RelativeMCEVsBaseline = &v
				}
			}
		}
		r.Corruptions = c
	}
	if cc := raw.Model.CC; cc != nil {
		out := &report.CCCert{Transform: raw.Model.CCTransform, Images: len(cc.Samples), N: cc.N, K: cc.K, Delta: cc.Delta, Eps: []float64{1e-4, 1e-3, 1e-2}}
		for _, e := range out.Eps {
			out.Certified = append(out.Certified, cc.CertifiedAt(e).Accuracy())
			if b != nil && b.CC != nil {
				out.Baseline = append(out.Baseline, b.CC.CertifiedAt(e).Accuracy())
			}
		}
		out.PerImage = ccImages(cc.Samples)
		if b != nil && b.CC != nil {
			out.BaselinePerImage = ccImages(b.CC.Samples)
		}
		if cc.GridPoints > 0 {
			out.GridPoints = cc.GridPoints
			v := cc.EmpiricalAccuracy().Accuracy()
			out.Empirical = &v
			if b != nil && b.CC != nil && b.CC.GridPoints == cc.GridPoints {
				bv := b.CC.EmpiricalAccuracy().Accuracy()
				out.BaselineEmpirical = &bv
			}
		}
		r.CCCert = out
	}
	if sm := raw.Model.Smoothing; sm != nil {
		out := &report.Smoothing{Sigma: sm.Sigma, N0: sm.N0, N: sm.N, Alpha: sm.Alpha, Images: len(sm.Samples), ACR: sm.ACR()}
		for _, s := range sm.Samples {
			if s.Pred == runtime.Abstain {
				out.Abstained++
			}
		}
		for _, rad := range []float64{0, 0.25, 0.5, 0.75, 1} {
			out.Radii = append(out.Radii, rad)
			out.Certified = append(out.Certified, sm.CertifiedAt(rad).Accuracy())
			if b != nil && b.Smoothing != nil {
				out.Baseline = append(out.Baseline, b.Smoothing.CertifiedAt(rad).Accuracy())
			}
		}
		if b != nil && b.Smoothing != nil {
			v := b.Smoothing.ACR()
			out.BaselineACR = &v
		}
		// The plot's curve: 81 radii from 0 to 10% past the largest
		// certifiable one (or past 1, the table's last radius).
		top := 1.1 * max(report.MaxRadius(out), 1)
		for i := range 81 {
			rad := top * float64(i) / 80
			out.CurveRadii = append(out.CurveRadii, rad)
			out.CurveCertified = append(out.CurveCertified, sm.CertifiedAt(rad).Accuracy())
			if b != nil && b.Smoothing != nil {
				out.CurveBaseline = append(out.CurveBaseline, b.Smoothing.CertifiedAt(rad).Accuracy())
			}
		}
		r.Smoothing = out
	}
	return r
}

// ccImages lists CC-Cert samples as the report's per-image outcomes, in
// test-set order (merged shards come in shard order).
func ccImages(samples []runtime.CCSample) []report.CCImage {
	out := make([]report.CCImage, 0, len(samples))
	for _, s := range samples {
		out = append(out, report.CCImage{Index: s.Index, Label: s.Label, Pred: s.Pred, Correct: s.Correct, Bound: s.Bound})
	}
	slices.SortFunc(out, func(a, b report.CCImage) int { return a.Index - b.Index })
	return out
}

// sweepMeans returns the mean accuracy over all cells and the unnormalized
// mCE (mean over corruptions of the mean error over severities), leaving
// out excluded corruptions.
// withoutCorruptions is s without the cells of the excluded corruptions.
func withoutCorruptions(s *runtime.Sweep, excluded []string) *runtime.Sweep {
	out := &runtime.Sweep{Seed: s.Seed, Clean: s.Clean}
	for _, c := range s.Cells {
		if !slices.Contains(excluded, c.Corruption) {
			out.Cells = append(out.Cells, c)
		}
	}
	return out
}

func sweepMeans(cells []runtime.SweepCell, excluded []string) (mean, mce float64) {
	byName := map[string][]float64{}
	var order []string
	var sum float64
	n := 0
	for _, c := range cells {
		if slices.Contains(excluded, c.Corruption) {
			continue
		}
		if _, ok := byName[c.Corruption]; !ok {
			order = append(order, c.Corruption)
		}
		byName[c.Corruption] = append(byName[c.Corruption], c.Accuracy())
		sum += c.Accuracy()
		n++
	}
	if n == 0 {
		return math.NaN(), math.NaN()
	}
	for _, name := range order {
		var e float64
		for _, a := range byName[name] {
			e += 1 - a
		}
		mce += e / float64(len(byName[name]))
	}
	return sum / float64(n), mce / float64(len(order))
}

// NewCmdMerge returns the merge command.
func NewCmdMerge(ios *IOStreams, g *GlobalOptions) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "merge raw-0-of-N.json... -o report/",
		Short: "Combine the shards of a sharded verify run into one report",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return FlagErrorf("merge: give the raw-I-of-N.json files of every shard")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return FlagErrorf("merge: -o/--output (the report folder) is required")
			}
			raw, err := mergeRaw(args)
			if err != nil {
				return err
			}
			if err := os.MkdirAll(out, 0o755); err != nil {
				return err
			}
			if err := writeJSON(filepath.Join(out, "raw.json"), raw); err != nil {
				return err
			}
			return writeReport(ios, out, raw)
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "report folder")
	return cmd
}

// checkCounts checks that every count of a shard is one a run can
// produce: 0 ≤ correct ≤ n, every sweep cell
// over the shard's clean images.
func (r *RawResult) checkCounts() error {
	for _, m := range []struct {
		what string
		m    *ModelRaw
	}{{"model", &r.Model}, {"baseline", r.Baseline}} {
		if m.m == nil {
			continue
		}
		bad := func(what string, e runtime.Eval) error {
			return fmt.Errorf("%s %s: %d correct of %d images", m.what, what, e.Correct, e.N)
		}
		if c := m.m.Clean; c.N < 0 || c.Correct < 0 || c.Correct > c.N {
			return bad("clean accuracy", c)
		}
		if sw := m.m.Sweep; sw != nil {
			for _, cell := range sw.Cells {
				if cell.N != m.m.Clean.N || cell.Correct < 0 || cell.Correct > cell.N {
					return bad(fmt.Sprintf("%s at severity %d (the clean images are %d)", cell.Corruption, cell.Severity, m.m.Clean.N), runtime.Eval{N: cell.N, Correct: cell.Correct})
				}
			}
		}
	}
	return nil
}

// mergeRaw adds the shards' counts and concatenates their samples. Every
// shard 0..N-1 of one run must be given exactly once.
func mergeRaw(paths []string) (*RawResult, error) {
	var shards []*RawResult
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		var r RawResult
		err = json.NewDecoder(io.LimitReader(f, 1<<30)).Decode(&r)
		f.Close()
		switch {
		case err != nil:
			return nil, fmt.Errorf("merge: %s is not a verify shard (raw-I-of-N.json): %v", p, err)
		case r.Schema != rawSchema:
			return nil, fmt.Errorf("merge: %s is not a verify shard (raw-I-of-N.json): its schema is %q, not %q", p, r.Schema, rawSchema)
		case r.Shard[1] < 1 || r.Shard[0] < 0 || r.Shard[0] >= r.Shard[1]:
			return nil, fmt.Errorf("merge: %s claims to be shard %d/%d", p, r.Shard[0], r.Shard[1])
		}
		if err := r.checkCounts(); err != nil {
			return nil, fmt.Errorf("merge: %s: %w; it was edited or damaged: run that shard again", p, err)
		}
		shards = append(shards, &r)
	}
	slices.SortFunc(shards, func(a, b *RawResult) int { return a.Shard[0] - b.Shard[0] })
	n := shards[0].Shard[1]
	if len(shards) != n {
		return nil, fmt.Errorf("merge: got %d files for a run of %d shards", len(shards), n)
	}
	for i, s := range shards {
		if s.Shard != [2]int{i, n} {
			return nil, fmt.Errorf("merge: shard %d/%d is missing or given twice", i, n)
		}
		f := shards[0]
		if s.Model.Facts.SHA256 != f.Model.Facts.SHA256 || s.Seed != f.Seed || s.Data != f.Data {
			return nil, fmt.Errorf("merge: shard %d/%d is of another run (model, seed or data differ)", i, n)
		}
		if (s.Baseline == nil) != (f.Baseline == nil) || (s.Baseline != nil && s.Baseline.Facts.SHA256 != f.Baseline.Facts.SHA256) {
			return nil, fmt.Errorf("merge: shard %d/%d is of another run (the baseline differs)", i, n)
		}
		if s.Subset != f.Subset || s.CertSubset != f.CertSubset || !slices.Equal(s.Severities, f.Severities) || !slices.Equal(s.Excluded, f.Excluded) ||
			s.Model.CCTransform != f.Model.CCTransform {
			return nil, fmt.Errorf("merge: shard %d/%d was run with other settings than shard 0/%d (--subset %d/%d, --cert-subset %d/%d, --severities %v/%v, --cc-transform %q/%q); run every shard with the same flags but --shard",
				i, n, n, s.Subset, f.Subset, s.CertSubset, f.CertSubset, s.Severities, f.Severities, s.Model.CCTransform, f.Model.CCTransform)
		}
	}
	out := *shards[0]
	out.Shard = [2]int{0, 1}
	// Copy the first shard's model results so merging does not alias them.
	first := *shards[0]
	m0 := first.Model
	out.Model = m0
	if first.Baseline != nil {
		b0 := *first.Baseline
		out.Baseline = &b0
	}
	mergeModel := func(get func(*RawResult) *ModelRaw) error {
		dst := get(&out)
		for _, s := range shards[1:] {
			if get(s) == nil || (get(s).Sweep == nil) != (dst.Sweep == nil) || (get(s).CC == nil) != (dst.CC == nil) || (get(s).Smoothing == nil) != (dst.Smoothing == nil) {
				return fmt.Errorf("shards measured different things (corruptions or certificates differ)")
			}
			dst.Clean = dst.Clean.Add(get(s).Clean)
		}
		var err error
		if dst.Sweep != nil {
			var parts []*runtime.Sweep
			for _, s := range shards {
				parts = append(parts, get(s).Sweep)
			}
			if dst.Sweep, err = runtime.MergeSweeps(parts...); err != nil {
				return err
			}
		}
		if dst.CC != nil {
			var parts []*runtime.CCCertResult
			for _, s := range shards {
				parts = append(parts, get(s).CC)
			}
			if dst.CC, err = runtime.MergeCC(parts...); err != nil {
				return err
			}
		}
		if dst.Smoothing != nil {
			var parts []*runtime.SmoothingResult
			for _, s := range shards {
				parts = append(parts, get(s).Smoothing)
			}
			if dst.Smoothing, err = runtime.MergeSmoothing(parts...); err != nil {
				return err
			}
		}
		return nil
	}
	if err := mergeModel(func(r *RawResult) *ModelRaw { return &r.Model }); err != nil {
		return nil, fmt.Errorf("merge: %w", err)
	}
	if out.Baseline != nil {
		for _, s := range shards {
			if s.Baseline == nil {
				return nil, fmt.Errorf("merge: some shards have a baseline and some do not")
			}
		}
		if err := mergeModel(func(r *RawResult) *ModelRaw { return r.Baseline }); err != nil {
			return nil, fmt.Errorf("merge: baseline: %w", err)
		}
	}
	return &out, nil
}
