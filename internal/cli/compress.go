package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"

	"github.com/csam-onnx/csam-onnx/autodiff"
	"github.com/csam-onnx/csam-onnx/csam"
	"github.com/csam-onnx/csam-onnx/dataset"
	"github.com/csam-onnx/csam-onnx/finetune"
	"github.com/csam-onnx/csam-onnx/graph"
	"github.com/csam-onnx/csam-onnx/onnxio"
	"github.com/csam-onnx/csam-onnx/runtime"
	"github.com/csam-onnx/csam-onnx/tensor"
)

// CompressOptions are the inputs of `csam-onnx compress`.
type CompressOptions struct {
	IO     *IOStreams
	Global *GlobalOptions

	Model        string
	Data         string
	Output       string
	Config       string
	Granularity  string
	SparseFormat string
	TrainSubset  int
	TestSubset   int
	CropPad      int
	Flip         bool

	CheckpointDir   string
	CheckpointEvery int
	Resume          bool

	Learn    csam.Config
	Args     []string
	Norm     inputNormFlags
	Loading  dataFlags
	EvalMode bool
}

// NewCmdCompress returns the compress command.
func NewCmdCompress(ios *IOStreams, g *GlobalOptions, runF func(context.Context, *CompressOptions) error) *cobra.Command {
	opts := &CompressOptions{IO: ios, Global: g, Learn: csam.DefaultConfig("csam")}
	l := &opts.Learn
	cmd := &cobra.Command{
		Use:   "compress <model.onnx> --data SPEC --sparsity S [--method M] -o OUT",
		Short: "Prune a model with C-SAM (or a baseline) and verify the written file",
		Long: `Learn a pruning mask for an ONNX image classifier and write the pruned model.

--method csam (default) searches the mask with compression-aware sharpness
minimization (weights frozen, --search-epochs), then fine-tunes the kept
weights (--finetune-epochs). Baselines: magnitude (one-shot, then
fine-tune), gmp (gradual magnitude pruning), sam-prune (SAM-train dense, then
prune and fine-tune), prune-sam (prune, then SAM fine-tune), hydra (score
search from scaled init), flying-bird (magnitude mask, then RigL-style
prune-and-regrow at fixed density for --search-epochs). Every method gets
the same number of epochs in all.

Pruned weights are written as exact zeros in ordinary initializers (or as
sparse_initializer with --sparse-format coo where smaller). With
--granularity channel whole channels are pruned instead (each dependency
group of channels tied by residual Adds, depthwise convs and Concats keeps
ceil((1-S)*C) of its C channels; methods csam, magnitude, sam-prune,
prune-sam) and removed physically, so the written model is a smaller dense
model. The written file is then checked in onnxruntime: parity with the Go
engine on test images and clean test accuracy, reported in OUT.json.

Every flag can also come from a YAML recipe (--config), keyed by flag name;
flags on the command line win. The output (-o, default MODEL.csam.onnx beside
MODEL.onnx) comes with its report OUT.json; checkpoints go to
--checkpoint-dir (default OUT.ckpt/) and --resume continues an interrupted
run.`,
		Example: "  csam-onnx compress models/fmnist_resnet8.onnx --data fashion-mnist --sparsity 0.9 -o out/fmnist.csam.onnx",
		Args:    exactArgs(1, "one model file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Model = args[0]
			opts.Args = os.Args
			if opts.Config != "" {
				if err := applyRecipe(cmd.Flags(), opts.Config); err != nil {
					return err
				}
			}
			if opts.Data == "" {
				return FlagErrorf("compress: --data is required (e.g. fashion-mnist, cifar10:DIR)")
			}
			if opts.Output == "" {
				opts.Output = besideModel(opts.Model, ".csam.onnx")
			}
			if err := outputFile("compress", "-o", opts.Output); err != nil {
				return err
			}
			if err := notInput("compress", "-o", opts.Output, "input model", opts.Model); err != nil {
				return err
			}
			if err := opts.Norm.check("compress"); err != nil {
				return err
			}
			switch opts.Granularity {
			case "weight", "channel":
				l.Granularity = opts.Granularity
			default:
				return FlagErrorf("compress: --granularity %q: want weight or channel", opts.Granularity)
			}
			switch opts.SparseFormat {
			case "dense", "coo":
			default:
				return FlagErrorf("compress: --sparse-format %q: want dense or coo", opts.SparseFormat)
			}
			if opts.Granularity == "channel" && opts.SparseFormat == "coo" {
				return FlagErrorf("compress: --sparse-format coo applies to --granularity weight; a channel-pruned model is written smaller and dense")
			}
			l.Seed = g.Seed
			l.Workers = g.Threads
			if err := l.Validate(); err != nil {
				return &FlagError{Err: err}
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return compressRun(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Data, "data", "", "data set spec (train split for learning, test split for the check)")
	f.StringVarP(&opts.Output, "output", "o", "", "output ONNX file (default: the model's path with .csam.onnx for .onnx)")
	opts.Norm.register(f)
	opts.Loading.register(f)
	f.StringVar(&opts.Config, "config", "", "YAML recipe holding any of these flags")
	f.StringVar(&l.Method, "method", l.Method, "pruning method: "+strings.Join(csam.Methods(), ", "))
	f.Float64Var(&l.Sparsity, "sparsity", l.Sparsity, "fraction of prunable weights to remove, in (0,1)")
	f.StringVar(&opts.Granularity, "granularity", "weight", "weight (unstructured) or channel (structured)")
	f.BoolVar(&l.Global, "global", false, "one top-k over all layers instead of per layer")
	f.BoolVar(&l.Selection.SkipFirst, "skip-first", false, "leave the first convolution dense")
	f.BoolVar(&l.Selection.SkipLast, "skip-last", false, "leave the classifier dense")
	f.StringVar(&l.Variant, "variant", l.Variant, "C-SAM variant: A (SAM on the soft mask), B (Hamming flips), C (uniform noise), D (threshold + sparsity penalty), E (Bernoulli)")
	f.Float64Var(&l.Rho, "rho", l.Rho, "C-SAM perturbation radius")
	f.StringVar(&l.RhoNorm, "rho-norm", l.RhoNorm, "radius normalization: layer, global or adaptive")
	f.Float64Var(&l.MaskNoise, "mask-noise", 0, "uniform mask noise amplitude a")
	f.Float64Var(&l.RhoHamming, "rho-hamming", l.RhoHamming, "variant B: fraction of kept weights flipped")
	f.Float64Var(&l.LambdaSp, "lambda-sp", l.LambdaSp, "variant D: sparsity penalty weight")
	f.Float64Var(&l.InitPercentile, "init-percentile", 0, "C-SAM: percentile τ of the soft-mask initialization clip(|θ|/Q(|θ|,τ), 0, 1), in (0,100]; 0: the sparsity percentile, which starts every kept weight at 1 (100: no clipping)")
	f.IntVar(&l.SearchEpochs, "search-epochs", l.SearchEpochs, "mask-search epochs (weights frozen unless --joint-weights)")
	f.BoolVar(&l.JointWeights, "joint-weights", false, "C-SAM: also train the weights during the mask search (SGD at --finetune-lr with the gradient at the perturbed mask)")
	f.Float64Var(&l.SearchLR, "search-lr", l.SearchLR, "mask-search learning rate")
	f.IntVar(&l.FinetuneEpochs, "finetune-epochs", l.FinetuneEpochs, "fine-tuning epochs (mask frozen)")
	f.BoolVar(&opts.EvalMode, "eval-mode", false, "run and write a model exported in training mode (BatchNormalization on batch statistics, Dropout at random) in eval mode")
	f.IntVar(&l.RecalibrateBN, "recalibrate-bn", 0, "after fine-tuning, re-estimate the BatchNormalization running statistics as the average over N training batches (0: off; helps most after a short fine-tune)")
	f.Float64Var(&l.FinetuneLR, "finetune-lr", l.FinetuneLR, "fine-tuning learning rate")
	f.Float64Var(&l.WeightDecay, "weight-decay", l.WeightDecay, "fine-tuning weight decay")
	f.Float64Var(&l.SAMRho, "sam-rho", l.SAMRho, "SAM radius of the sam-prune and prune-sam baselines")
	f.IntVar(&l.Batch, "batch", l.Batch, "batch size")
	f.IntVar(&opts.TrainSubset, "train-subset", 0, "learn on a stratified subset of N training images (0: all)")
	f.IntVar(&opts.TestSubset, "test-subset", 0, "check on N test images evenly spaced over the test set (0: all)")
	f.IntVar(&opts.CropPad, "crop-pad", -1, "random-crop padding (-1: 4 for 32 px and larger, 2 below)")
	f.BoolVar(&opts.Flip, "flip", true, "random horizontal flips")
	f.StringVar(&opts.SparseFormat, "sparse-format", "dense", "dense (zeros in initializers) or coo (sparse_initializer where smaller)")
	f.StringVar(&opts.CheckpointDir, "checkpoint-dir", "", "checkpoint folder (default OUT.ckpt)")
	f.IntVar(&opts.CheckpointEvery, "checkpoint-every", 200, "checkpoint every N steps")
	f.BoolVar(&opts.Resume, "resume", false, "continue an interrupted run from its checkpoints")
	return cmd
}

// applyRecipe sets, from a YAML file of flag: value pairs, every flag not
// given on the command line.
func applyRecipe(fs *pflag.FlagSet, path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return FlagErrorf("--config: %v", err)
	}
	var kv map[string]any
	if err := yaml.Unmarshal(b, &kv); err != nil {
		return FlagErrorf("--config %s: not a YAML mapping of flag names to values: %v", path, err)
	}
	keys := make([]string, 0, len(kv))
	for k := range kv {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fl := fs.Lookup(k)
		if fl == nil || k == "config" {
			return FlagErrorf("--config %s: unknown key %q (keys are compress's flag names, e.g. sparsity, method)", path, k)
		}
		if fl.Changed {
			continue
		}
		if err := fs.Set(k, fmt.Sprint(kv[k])); err != nil {
			return FlagErrorf("--config %s: %s: %v", path, k, err)
		}
	}
	return nil
}

// CompressReport is written next to the pruned model as OUT.json.
type CompressReport struct {
	Tool        string           `json:"tool"`
	Command     string           `json:"command"`
	Input       string           `json:"input"`
	Output      string           `json:"output"`
	Data        string           `json:"data"`
	Config      csam.Config      `json:"config"`
	Result      *csam.Result     `json:"result"`
	WallSeconds float64          `json:"wall_seconds"`
	Check       CompressCheck    `json:"check"`
	Size        runtime.FileSize `json:"size"`
	// ParamsBefore and ParamsAfter count float parameters of the input and
	// the written model (they differ with --granularity channel).
	ParamsBefore int                   `json:"params_before"`
	ParamsAfter  int                   `json:"params_after"`
	DenseTest    *finetune.Evaluation  `json:"dense_test_go_engine,omitempty"`
	Epochs       []finetune.EpochStats `json:"-"`
}

// CompressCheck is the verification of the written file.
type CompressCheck struct {
	ORTVersion      string  `json:"onnxruntime_version"`
	TestImages      int     `json:"test_images"`
	AccuracyORT     float64 `json:"accuracy_onnxruntime"`
	AccuracyGo      float64 `json:"accuracy_go_engine"`
	MaxAbsLogitDiff float64 `json:"max_abs_logit_diff"`
}

func compressRun(ctx context.Context, opts *CompressOptions) (err error) {
	start := time.Now()
	ortLib, err := runtime.FindLibrary(opts.Global.ORTLib)
	if err != nil {
		return err
	}
	m, err := loadModel(opts.Model)
	if err != nil {
		return err
	}
	if err := finiteWeights(m, opts.Model); err != nil {
		return err
	}
	if err := evalMode(m, opts.Model, opts.EvalMode, opts.IO.ErrOut, "compress", ", or pass --eval-mode to run it and write it in eval mode"); err != nil {
		return err
	}
	paramsBefore := csam.CountParams(m)
	l := opts.Learn
	norm, err := opts.Norm.resolve(m, opts.Model)
	if err != nil {
		return err
	}
	nhwc := opts.Norm.channelsLast(m)
	// The model's own input normalization (and a channels-last layout)
	// goes in front of it while the engine runs it, and out before it is
	// written.
	unwrapNorm, err := wrapInput(m, norm, nhwc)
	if err != nil {
		return fmt.Errorf("%s: %w", opts.Model, err)
	}
	// Train at any batch size, even when the file fixes one (static
	// PyTorch exports); the declared batch is put back before writing.
	fixedBatch := declaredBatch(m)
	restoreBatch := freeBatch(m)
	// A model exported with dynamic image sizes is compiled for the
	// data's: the data is read first, and the sizes go back before writing.
	var train, test *dataset.Dataset
	restoreDims := func() {}
	if symbolicImageDims(m) {
		if train, test, err = loadSplits(ctx, opts.Data, true, opts.Loading.with("compress", opts.IO.ErrOut)); err != nil {
			return err
		}
		restoreDims = fixImageDims(m, train)
	}
	shape, err := finetune.InputShape(m, l.Batch)
	if err != nil {
		return fmt.Errorf("%s: %w", opts.Model, err)
	}
	// Refuse unsupported ops before any data is read.
	if _, err := autodiff.Compile(m, [][]int{shapeWithBatch(shape, 1)}, &autodiff.Options{Params: []string{}}); err != nil {
		return fmt.Errorf("%s: %w", opts.Model, err)
	}
	if l.Granularity == "channel" {
		if _, err := csam.SelectChannelGroups(m, l.Selection); err != nil {
			return fmt.Errorf("%s: %w", opts.Model, err)
		}
	}
	undo, err := writableDir("-o", opts.Output, filepath.Dir(opts.Output))
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			undo()
		}
	}()
	if train == nil {
		if train, test, err = loadSplits(ctx, opts.Data, true, opts.Loading.with("compress", opts.IO.ErrOut)); err != nil {
			return err
		}
	}
	var noted bool
	train = fitChannels(train, shape[1], opts.Data, "compress", opts.IO.ErrOut, &noted)
	test = fitChannels(test, shape[1], opts.Data, "compress", opts.IO.ErrOut, &noted)
	if err := train.Fits(shape[1:], outputClasses(m)); err != nil {
		return fmt.Errorf("--data %s does not fit %s: %w", opts.Data, opts.Model, err)
	}
	if note := train.ClassNote(outputClasses(m)); note != "" {
		fmt.Fprintf(opts.IO.ErrOut, "compress: note: --data %s: %s\n", opts.Data, note)
	}
	if opts.TrainSubset > 0 && opts.TrainSubset < train.Len() {
		train = train.Stratified(opts.TrainSubset, newPCG(opts.Global.Seed))
	}
	if opts.TestSubset > 0 && opts.TestSubset < test.Len() {
		test = test.Select(spread(test.Len(), opts.TestSubset))
	}
	if fixedBatch > test.Len() {
		// The written file's check runs one batch of the file's size.
		return fmt.Errorf("%s fixes its batch size at %d, more than the %d test images to check the written file on; give --test-subset %d or more (or export it with a dynamic batch)", opts.Model, fixedBatch, test.Len(), fixedBatch)
	}
	ckdir := opts.CheckpointDir
	if ckdir == "" {
		ckdir = opts.Output + ".ckpt"
	}
	l.CheckpointDir, l.CheckpointEvery, l.Resume = ckdir, opts.CheckpointEvery, opts.Resume
	sourceHash := fileSHA256(opts.Model) // recorded in the checkpoints and in the written file
	// What --resume must find unchanged besides the method's settings:
	// the data the steps draw from and the model they start from.
	l.RunMeta = map[string]string{"data": opts.Data, "train_subset": strconv.Itoa(opts.TrainSubset), "crop_pad": strconv.Itoa(opts.CropPad),
		"flip": strconv.FormatBool(opts.Flip), "model_sha256": sourceHash}
	pad := opts.CropPad
	if pad < 0 {
		pad = 2
		if train.H >= 32 {
			pad = 4
		}
	}
	src := &finetune.DatasetSource{Data: train, Batch: l.Batch, Train: true, Seed: opts.Global.Seed,
		Augment: &dataset.Augment{Pad: pad, FlipH: opts.Flip}}
	if src.StepsPerEpoch() == 0 {
		return fmt.Errorf("--data %s: %d training images is fewer than one batch of %d", opts.Data, train.Len(), l.Batch)
	}
	if err := os.MkdirAll(ckdir, 0o755); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.Remove(ckdir) // only when no checkpoint was written into it
		}
	}()
	rep := &CompressReport{Tool: "csam-onnx " + Version, Command: strings.Join(opts.Args, " "), Input: opts.Model,
		Output: opts.Output, Data: opts.Data, Config: l}
	var prog *progress
	phase := ""
	enc := json.NewEncoder(opts.IO.Out)
	res, err := csam.Learn(ctx, m, src, l, csam.Hooks{
		OnPhase: func(name string, epochs int) {
			phase = name
			prog = newProgress(opts.IO, opts.Global, name, epochs*src.StepsPerEpoch())
		},
		Hooks: finetune.Hooks{
			OnStep: func(it finetune.Iter, st finetune.StepStats) { prog.step(it, st) },
			OnEpoch: func(e finetune.EpochStats) {
				prog.clear()
				line := map[string]any{"phase": phase, "epoch": e.Epoch + 1, "loss": e.Loss, "train_accuracy": e.Accuracy}
				for k, v := range e.Extra {
					line[k] = v // perturbed_loss is the epoch's mean (csam.Learn)
				}
				enc.Encode(line)
			},
		},
	})
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return fmt.Errorf("compress: interrupted; checkpoints are in %s, rerun the same command with --resume: %w", ckdir, err)
		}
		return err
	}
	rep.Result = res
	// The model as the file declared it, without the input wrapper, for
	// the annotations, the parameter counts and the file.
	restoreBatch()
	restoreDims()
	unwrapNorm()
	prov := csam.Provenance{ToolVersion: Version, Data: opts.Data, Command: rep.Command}
	if l.Granularity == "channel" {
		err = csam.AnnotateChannels(m, res, l, prov, paramsBefore)
	} else {
		err = csam.Annotate(m, res, l, prov)
	}
	if err != nil {
		return err
	}
	rep.ParamsBefore, rep.ParamsAfter = paramsBefore, csam.CountParams(m)
	meta := inputMetadata(norm, nhwc)
	meta[metaSource] = sourceHash
	csam.SetMetadata(m, meta)
	if opts.SparseFormat == "coo" {
		sparsifyModel(m, res)
	}
	if dir := filepath.Dir(opts.Output); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	// The file is written beside the output and takes its name once both
	// runtimes have run it: a run that fails from here on leaves an
	// earlier file at -o as it was and no new one (the checkpoint stays,
	// so --resume redoes only this end).
	unverified := filepath.Join(filepath.Dir(opts.Output), "."+filepath.Base(opts.Output)+".unverified")
	if err := onnxio.WriteFile(unverified, m); err != nil {
		return err
	}
	defer os.Remove(unverified) // a no-op once renamed
	// Verify the written file, not the in-memory model.
	written, err := onnxio.ReadFile(unverified)
	if err != nil {
		return fmt.Errorf("compress: reading back %s: %w", unverified, err)
	}
	unwrapWritten, err := wrapInput(written, norm, nhwc)
	if err != nil {
		return err
	}
	freeBatch(written)
	fixImageDims(written, test)
	goEval, err := finetune.Evaluate(ctx, written, &finetune.DatasetSource{Data: test, Batch: 256}, 256, opts.Global.Threads)
	if err != nil {
		return err
	}
	// The parity check gives both runtimes the same raw input.
	unwrapWritten()
	freeBatch(written)
	if !nhwc {
		fixImageDims(written, test)
	}
	sess, ortEval, err := ortAccuracy(ctx, ortLib, unverified, test, opts.Global.Threads, norm, nhwc)
	if err != nil {
		return err
	}
	defer sess.Close()
	diff, err := parityOnData(written, sess, test, min(64, test.Len()))
	if err != nil {
		return err
	}
	rep.Check = CompressCheck{ORTVersion: runtime.Version(), TestImages: ortEval.N, AccuracyORT: ortEval.Accuracy(),
		AccuracyGo: goEval.Accuracy, MaxAbsLogitDiff: diff}
	if rep.Size, err = runtime.ModelSize(unverified); err != nil {
		return err
	}
	// Both runtimes ran it (a logit difference beyond the tolerance
	// still fails below, with the file kept for the report).
	if err := os.Rename(unverified, opts.Output); err != nil {
		return fmt.Errorf("compress: %w", err)
	}
	rep.WallSeconds = time.Since(start).Seconds()
	if err := writeJSON(opts.Output+".json", rep); err != nil {
		return err
	}
	os.RemoveAll(ckdir)
	if l.Granularity == "channel" {
		fmt.Fprintf(opts.IO.ErrOut, "channel pruning: %d → %d parameters (%.1f%%)\n", rep.ParamsBefore, rep.ParamsAfter, 100*float64(rep.ParamsAfter)/float64(max(rep.ParamsBefore, 1)))
	}
	fmt.Fprintf(opts.IO.ErrOut, "wrote %s: %s, sparsity %.4f; test accuracy %.2f%% in onnxruntime (%.2f%% Go engine, max logit difference %.2g) on %d images; %.0f s\n",
		opts.Output, res.Method, res.Sparsity, 100*rep.Check.AccuracyORT, 100*rep.Check.AccuracyGo, diff, rep.Check.TestImages, rep.WallSeconds)
	if diff > compressParityATol {
		return &CheckFailedError{Model: opts.Output, ATol: compressParityATol, Failed: []OutputDiff{{Name: "logits", Problem: fmt.Sprintf("max abs difference %.3g on test images", diff)}}}
	}
	if steps := res.FinetuneSteps; l.RecalibrateBN == 0 && steps < shortFinetune && m.Graph.HasOp("BatchNormalization") {
		fmt.Fprintf(opts.IO.ErrOut, "compress: note: the fine-tune ran %d steps, too few for the BatchNormalization running statistics to follow the pruned weights; --recalibrate-bn %d re-estimates them (docs/compress.md)\n", steps, shortFinetune)
	}
	return nil
}

// shortFinetune is the number of fine-tuning steps below which compress
// suggests --recalibrate-bn: the running statistics move by an exponential
// average with momentum 0.9 a step (docs/compress.md: stale after 8
// steps, caught up after 78).
const shortFinetune = 50

func shapeWithBatch(shape []int, b int) []int {
	s := append([]int(nil), shape...)
	s[0] = b
	return s
}

// parityOnData runs the first batch of test images through the Go engine
// and onnxruntime and returns the largest absolute logit difference.
func parityOnData(m *graph.Model, sess *runtime.Session, test *dataset.Dataset, batch int) (float64, error) {
	if in := sess.Inputs(); len(in) > 0 && len(in[0].Shape) > 0 && in[0].Shape[0] > 0 {
		batch = int(in[0].Shape[0]) // the file fixes its batch size
	}
	n := min(batch, test.Len())
	if n < batch {
		return 0, fmt.Errorf("compress: the model's batch size %d is larger than the %d test images", batch, n)
	}
	shape, err := finetune.InputShape(m, n)
	if err != nil {
		return 0, err
	}
	prog, err := autodiff.Compile(m, [][]int{shape}, &autodiff.Options{Params: []string{}})
	if err != nil {
		return 0, err
	}
	in := prog.Input(0)
	switch in.DType {
	case tensor.Float32:
		for i := 0; i < n; i++ {
			test.Image(in.F32[i*test.Stride():(i+1)*test.Stride()], i)
		}
	case tensor.Uint8: // the bytes runtime gives onnxruntime
		img := make([]float32, test.Stride())
		for i := 0; i < n; i++ {
			test.Image(img, i)
			runtime.PixelBytes(in.I64[i*test.Stride():(i+1)*test.Stride()], img)
		}
	default:
		return 0, fmt.Errorf("compress: the model's input is %s; images are fed as float32 or uint8", in.DType)
	}
	if err := prog.Forward(); err != nil {
		return 0, err
	}
	outs, err := sess.Run([]*tensor.Tensor{in})
	if err != nil {
		return 0, err
	}
	var worst float64
	for i, v := range prog.Output(0).F32 {
		worst = math.Max(worst, math.Abs(float64(v)-float64(outs[0].F32[i])))
	}
	return worst, nil
}

// declaredBatch is the batch size m's first input fixes, 0 when free.
func declaredBatch(m *graph.Model) int {
	ins := graphInputs(m.Graph)
	if len(ins) == 0 || ins[0].Type == nil || !ins[0].Type.HasShape || len(ins[0].Type.Shape) == 0 {
		return 0
	}
	if d := ins[0].Type.Shape[0]; d.HasValue && d.Value > 0 {
		return int(d.Value)
	}
	return 0
}

// freeBatch makes the first dimension of the model's first input symbolic
// and returns a function that puts the declared one back. A model whose
// graph hard-codes its batch size elsewhere (a Reshape to [2, -1]) then
// fails to compile at another batch, with an error naming the node.
func freeBatch(m *graph.Model) (restore func()) {
	for _, vi := range graphInputs(m.Graph) {
		if vi.Type == nil || !vi.Type.HasShape || len(vi.Type.Shape) == 0 {
			break
		}
		old := vi.Type.Shape[0]
		if old.HasParam {
			break
		}
		vi.Type.Shape[0] = graph.Dim{Param: "batch", HasParam: true}
		return func() { vi.Type.Shape[0] = old }
	}
	return func() {}
}

// symbolicImageDims reports whether the first input is [N, C, H, W] with
// C, H or W symbolic (an export with dynamic image sizes).
func symbolicImageDims(m *graph.Model) bool {
	ins := graphInputs(m.Graph)
	if len(ins) == 0 || ins[0].Type == nil || !ins[0].Type.HasShape || len(ins[0].Type.Shape) != 4 {
		return false
	}
	for _, d := range ins[0].Type.Shape[1:] {
		if !d.HasValue || d.Value <= 0 {
			return true
		}
	}
	return false
}

// fixImageDims sets the symbolic C, H and W of the first input to the
// data's image shape, so that the engine can compile the model for it;
// restore puts the symbolic dimensions back before the model is written.
func fixImageDims(m *graph.Model, d *dataset.Dataset) (restore func()) {
	if !symbolicImageDims(m) {
		return func() {}
	}
	sh := graphInputs(m.Graph)[0].Type.Shape
	old := slices.Clone(sh)
	for i, v := range []int{d.C, d.H, d.W} {
		if !sh[i+1].HasValue || sh[i+1].Value <= 0 {
			sh[i+1] = graph.Dim{Value: int64(v), HasValue: true}
		}
	}
	return func() { copy(sh[1:], old[1:]) }
}

// compressParityATol bounds the logit difference between the Go engine and
// onnxruntime on real test images. Logits of trained models reach ±20, and
// float32 sums in different orders differ by a few ulps of the partial
// sums, so this is looser than check's 1e-4 on random inputs; a wrong
// kernel is off by whole units.
const compressParityATol = 1e-3

// sparsifyModel moves every pruned weight whose COO form (4-byte value +
// 8-byte index per nonzero) is smaller than its dense form (4 bytes per
// element) into sparse_initializer.
func sparsifyModel(m *graph.Model, res *csam.Result) {
	pruned := map[string]bool{}
	for _, l := range res.Layers {
		pruned[l.Weight] = true
	}
	kept := m.Graph.Initializers[:0]
	for _, in := range m.Graph.Initializers {
		if pruned[in.Name] && in.Value.DType == tensor.Float32 {
			nnz := 0
			for _, v := range in.Value.F32 {
				if v != 0 {
					nnz++
				}
			}
			if 12*nnz < 4*len(in.Value.F32) {
				m.Graph.SparseInitializers = append(m.Graph.SparseInitializers, onnxio.Sparsify(in))
				continue
			}
		}
		kept = append(kept, in)
	}
	m.Graph.Initializers = kept
}
