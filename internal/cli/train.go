package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/csam-onnx/csam-onnx/csam"
	"github.com/csam-onnx/csam-onnx/dataset"
	"github.com/csam-onnx/csam-onnx/finetune"
	"github.com/csam-onnx/csam-onnx/graph"
	"github.com/csam-onnx/csam-onnx/models"
	"github.com/csam-onnx/csam-onnx/onnxio"
	"github.com/csam-onnx/csam-onnx/report"
	"github.com/csam-onnx/csam-onnx/runtime"
)

// TrainOptions are the inputs of `csam-onnx train`.
type TrainOptions struct {
	IO     *IOStreams
	Global *GlobalOptions

	Arch      string
	Width     float64
	InputSize int
	Init      string
	EvalMode  bool
	Data      string
	Output    string

	Epochs         int
	Batch          int
	LR             float64
	Momentum       float64
	Nesterov       bool
	WeightDecay    float64
	Schedule       string
	WarmupEpochs   float64
	StepEvery      int
	Gamma          float64
	LabelSmoothing float64
	CropPad        int
	Flip           bool
	TrainSubset    int
	EvalEpochs     bool

	Checkpoint      string
	CheckpointEvery int
	Resume          bool

	// Args is the command line, recorded in the model.
	Args    []string
	Norm    inputNormFlags
	Loading dataFlags
}

// NewCmdTrain returns the train command.
func NewCmdTrain(ios *IOStreams, g *GlobalOptions, runF func(context.Context, *TrainOptions) error) *cobra.Command {
	opts := &TrainOptions{IO: ios, Global: g}
	cmd := &cobra.Command{
		Use:   "train --arch ARCH --data SPEC --epochs N -o model.onnx",
		Short: "Train a reference architecture (or continue an ONNX model) on a data set",
		Long: `Train a dense image classifier in the Go engine and write it as ONNX.

--arch builds a fresh model (` + strings.Join(models.Archs(), ", ") + `) whose
input normalization uses the training set's per-channel mean and standard
deviation; --init continues training an existing ONNX model instead.
--init with --epochs 0 writes the model as it is and measures it: with
--eval-mode, the eval-mode copy of a model exported in training mode
(e.g. a dense model to give verify as --baseline).

Checkpoints are written to --checkpoint (default OUT.ckpt) every
--checkpoint-every steps and at each epoch end; --resume continues from it
and ends with the same weights as an uninterrupted run. Ctrl-C writes a
checkpoint and exits with status 2.

Writes OUT (ONNX), OUT.json (the report) and one JSON line per epoch on
stdout; the test accuracy is measured on the written file in onnxruntime.`,
		Example: "  csam-onnx train --arch resnet8 --data fashion-mnist --epochs 10 -o fmnist.onnx\n" +
			"  csam-onnx train --init exported.onnx --eval-mode --epochs 0 --data fashion-mnist -o eval.onnx",
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Args = os.Args
			if (opts.Arch == "") == (opts.Init == "") {
				return FlagErrorf("train: give exactly one of --arch (a new model) or --init (an ONNX model to continue)")
			}
			if opts.Arch != "" && !slices.Contains(models.Archs(), opts.Arch) {
				return FlagErrorf("train: --arch %q: want one of %s", opts.Arch, strings.Join(models.Archs(), ", "))
			}
			if !(opts.Width > 0) {
				return FlagErrorf("train: --width %v must be positive", opts.Width)
			}
			if opts.Data == "" {
				return FlagErrorf("train: --data is required (e.g. fashion-mnist, cifar10:DIR, flowers102:TARBALL)")
			}
			if opts.Output == "" {
				return FlagErrorf("train: -o/--output is required")
			}
			if err := outputFile("train", "-o", opts.Output); err != nil {
				return err
			}
			if opts.Init != "" {
				if err := notInput("train", "-o", opts.Output, "--init model", opts.Init); err != nil {
					return err
				}
			}
			if err := opts.Norm.check("train"); err != nil {
				return err
			}
			if opts.Arch != "" && (len(opts.Norm.Mean) > 0 || opts.Norm.Layout != "") {
				return FlagErrorf("train: --input-mean/--input-std/--input-layout apply to --init models; a model built with --arch takes [0, 1] pixels [N, C, H, W] and normalizes them inside")
			}
			if opts.Batch < 1 {
				return FlagErrorf("train: --batch must be at least 1")
			}
			if opts.Epochs < 0 || (opts.Epochs == 0 && opts.Init == "") {
				return FlagErrorf("train: --epochs must be at least 1 (0 only with --init: write the model unchanged, or in eval mode with --eval-mode, and measure it)")
			}
			if !(opts.LR > 0) {
				return FlagErrorf("train: --lr %v must be positive", opts.LR)
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return trainRun(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Arch, "arch", "", "architecture to build: "+strings.Join(models.Archs(), ", "))
	f.Float64Var(&opts.Width, "width", 1, "width multiplier of every channel count")
	f.IntVar(&opts.InputSize, "input-size", 0, "input height and width (default: the data's)")
	f.StringVar(&opts.Init, "init", "", "ONNX model to continue training instead of --arch")
	f.BoolVar(&opts.EvalMode, "eval-mode", false, "--init: train and write a model exported in training mode (BatchNormalization on batch statistics, Dropout at random) in eval mode")
	f.StringVar(&opts.Data, "data", "", "data set spec: fashion-mnist, mnist, cifar10:DIR, flowers102:TARBALL[@SIZE], folder:DIR")
	f.StringVarP(&opts.Output, "output", "o", "", "output ONNX file")
	opts.Norm.register(f)
	opts.Loading.register(f)
	f.IntVar(&opts.Epochs, "epochs", 10, "training epochs (0 with --init: write the model as it is, e.g. an eval-mode copy with --eval-mode, and measure it)")
	f.IntVar(&opts.Batch, "batch", 128, "batch size")
	f.Float64Var(&opts.LR, "lr", 0.1, "peak learning rate")
	f.Float64Var(&opts.Momentum, "momentum", 0.9, "SGD momentum")
	f.BoolVar(&opts.Nesterov, "nesterov", true, "Nesterov momentum")
	f.Float64Var(&opts.WeightDecay, "weight-decay", 5e-4, "L2 weight decay")
	f.StringVar(&opts.Schedule, "schedule", "cosine", "learning-rate schedule: cosine, step or constant")
	f.Float64Var(&opts.WarmupEpochs, "warmup", 1, "linear warm-up, in epochs")
	f.IntVar(&opts.StepEvery, "step-every", 0, "step schedule: decay every N epochs")
	f.Float64Var(&opts.Gamma, "gamma", 0.1, "step schedule: decay factor")
	f.Float64Var(&opts.LabelSmoothing, "label-smoothing", 0, "label smoothing of the cross-entropy")
	f.IntVar(&opts.CropPad, "crop-pad", -1, "random-crop padding in pixels (-1: 4 for 32 px and larger, 2 below)")
	f.BoolVar(&opts.Flip, "flip", true, "random horizontal flips")
	f.IntVar(&opts.TrainSubset, "train-subset", 0, "train on a stratified subset of N images (0: all)")
	f.BoolVar(&opts.EvalEpochs, "eval-epochs", true, "measure test accuracy (Go engine) after every epoch, for the curves")
	f.StringVar(&opts.Checkpoint, "checkpoint", "", "checkpoint file (default OUT.ckpt)")
	f.IntVar(&opts.CheckpointEvery, "checkpoint-every", 200, "checkpoint every N steps (and at each epoch end)")
	f.BoolVar(&opts.Resume, "resume", false, "continue from the checkpoint")
	return cmd
}

// TrainReport is written next to the trained model as OUT.json.
type TrainReport struct {
	Tool        string              `json:"tool"`
	Command     string              `json:"command"`
	Arch        string              `json:"arch,omitempty"`
	Width       float64             `json:"width,omitempty"`
	Data        string              `json:"data"`
	Seed        uint64              `json:"seed"`
	Epochs      []report.EpochPoint `json:"epochs"`
	Params      int                 `json:"params"`
	WallSeconds float64             `json:"wall_seconds"`
	TestGo      finetune.Evaluation `json:"test_go_engine"`
	TestORT     runtime.Eval        `json:"test_onnxruntime"`
	ORTAccuracy float64             `json:"test_accuracy_onnxruntime"`
	ORTVersion  string              `json:"onnxruntime_version"`
}

func trainRun(ctx context.Context, opts *TrainOptions) (err error) {
	start := time.Now()
	ortLib, err := runtime.FindLibrary(opts.Global.ORTLib)
	if err != nil {
		return err
	}
	// With --epochs 0 nothing trains: the test split alone is read, and
	// stands in for the training split's shape checks.
	train, test, err := loadSplits(ctx, opts.Data, opts.Epochs > 0, opts.Loading.with("train", opts.IO.ErrOut))
	if err != nil {
		return err
	}
	if train == nil {
		train = test
	}
	if opts.TrainSubset > 0 && opts.TrainSubset < train.Len() {
		train = train.Stratified(opts.TrainSubset, newPCG(opts.Global.Seed))
	}
	var m *graph.Model
	var norm *runtime.Normalization
	var nhwc bool
	unwrapNorm := func() {}
	if opts.Init != "" {
		if m, err = loadModel(opts.Init); err != nil {
			return err
		}
		if err := finiteWeights(m, opts.Init); err != nil {
			return err
		}
		if err := evalMode(m, opts.Init, opts.EvalMode, opts.IO.ErrOut, "train", ", or pass --eval-mode to train it and write it in eval mode"); err != nil {
			return err
		}
		if norm, err = opts.Norm.resolve(m, opts.Init); err != nil {
			return err
		}
		nhwc = opts.Norm.channelsLast(m)
		if unwrapNorm, err = wrapInput(m, norm, nhwc); err != nil {
			return fmt.Errorf("%s: %w", opts.Init, err)
		}
	} else {
		size := opts.InputSize
		if size == 0 {
			size = train.H
		}
		if size != train.H || size != train.W {
			return FlagErrorf("train: --input-size %d does not match the data's %d×%d images; load the data at that size (e.g. flowers102:TARBALL@%d)", size, train.H, train.W, size)
		}
		mean, std := channelStats(train)
		m, err = models.Build(models.Config{Arch: opts.Arch, Width: opts.Width, InputSize: size, InChannels: train.C,
			Classes: train.NumClasses(), Mean: mean, Std: std, Seed: opts.Global.Seed})
		if err != nil {
			return err
		}
	}
	// Train at any batch size and at the data's image size even when the
	// file fixes one or leaves the other symbolic; both go back before
	// writing.
	restoreBatch, restoreDims := freeBatch(m), fixImageDims(m, train)
	shape, err := finetune.InputShape(m, opts.Batch)
	if err != nil {
		return err
	}
	var noted bool
	train = fitChannels(train, shape[1], opts.Data, "train", opts.IO.ErrOut, &noted)
	test = fitChannels(test, shape[1], opts.Data, "train", opts.IO.ErrOut, &noted)
	if err := train.Fits(shape[1:], outputClasses(m)); err != nil {
		return fmt.Errorf("--data %s does not fit the model: %w", opts.Data, err)
	}
	if note := train.ClassNote(outputClasses(m)); note != "" {
		fmt.Fprintf(opts.IO.ErrOut, "train: note: --data %s: %s\n", opts.Data, note)
	}
	pad := opts.CropPad
	if pad < 0 {
		pad = 2
		if train.H >= 32 {
			pad = 4
		}
	}
	src := &finetune.DatasetSource{Data: train, Batch: opts.Batch, Train: true, Seed: opts.Global.Seed,
		Augment: &dataset.Augment{Pad: pad, FlipH: opts.Flip}}
	steps := src.StepsPerEpoch()
	if steps == 0 {
		return fmt.Errorf("--data %s: %d training images is fewer than one batch of %d", opts.Data, train.Len(), opts.Batch)
	}
	sched := finetune.Schedule{Kind: opts.Schedule, Base: opts.LR, TotalSteps: opts.Epochs * steps,
		WarmupSteps: int(opts.WarmupEpochs * float64(steps)), StepEvery: opts.StepEvery * steps, Gamma: opts.Gamma}
	tr, err := finetune.NewTrainer(m, finetune.TrainConfig{Batch: opts.Batch, Schedule: sched, Momentum: opts.Momentum,
		Nesterov: opts.Nesterov, WeightDecay: opts.WeightDecay, LabelSmoothing: opts.LabelSmoothing,
		Seed: opts.Global.Seed, Workers: opts.Global.Threads})
	if err != nil {
		return err
	}
	ckpt := opts.Checkpoint
	if ckpt == "" {
		ckpt = opts.Output + ".ckpt"
	}
	undoOut, err := writableDir("-o", opts.Output, filepath.Dir(opts.Output))
	if err != nil {
		return err
	}
	undoCkpt, err := writableDir("--checkpoint", ckpt, filepath.Dir(ckpt))
	if err != nil {
		undoOut()
		return err
	}
	defer func() {
		if err != nil {
			undoCkpt()
			undoOut()
		}
	}()
	rep := &TrainReport{Tool: "csam-onnx " + Version, Command: strings.Join(opts.Args, " "), Arch: opts.Arch, Width: opts.Width,
		Data: opts.Data, Seed: opts.Global.Seed}
	prog := newProgress(opts.IO, opts.Global, "train", opts.Epochs*steps)
	enc := json.NewEncoder(opts.IO.Out)
	lc := finetune.LoopConfig{Phase: "train", Epochs: opts.Epochs, CheckpointPath: ckpt, CheckpointEvery: opts.CheckpointEvery,
		Resume: opts.Resume, Meta: map[string]string{"data": opts.Data, "arch": opts.Arch, "init": opts.Init,
			"seed": fmt.Sprint(opts.Global.Seed), "batch": fmt.Sprint(opts.Batch),
			"epochs": fmt.Sprint(opts.Epochs), "lr": fmt.Sprint(opts.LR), "width": fmt.Sprint(opts.Width),
			"train_subset": fmt.Sprint(opts.TrainSubset)}}
	if !opts.Resume {
		if _, err := os.Stat(ckpt); err == nil {
			return FlagErrorf("train: checkpoint %s exists; pass --resume to continue it, or delete it to start over", ckpt)
		}
	}
	// evaluate measures m on the test set in the Go engine (after each
	// epoch, for an epoch an interruption left unmeasured, and at the end).
	evaluate := func() (finetune.Evaluation, error) {
		return finetune.Evaluate(ctx, m, &finetune.DatasetSource{Data: test, Batch: 256}, 256, opts.Global.Threads)
	}
	evalEpoch := func() (float64, error) {
		ev, err := evaluate()
		return ev.Accuracy, err
	}
	err = finetune.Loop(ctx, lc, src, tr, tr.Step, finetune.Hooks{
		OnStep: prog.step,
		OnResume: func(epoch, step int) {
			// A run interrupted while it evaluated the epoch it had just
			// finished checkpoints at the epoch boundary with the epoch
			// recorded unevaluated: the restored weights are that epoch's,
			// so evaluate them now.
			if opts.EvalEpochs && step == 0 && epoch > 0 {
				evaluateMissingEpoch(ckpt+".epochs.jsonl", epoch, evalEpoch)
			}
		},
		OnEpoch: func(e finetune.EpochStats) {
			prog.clear()
			pt := report.EpochPoint{Epoch: e.Epoch + 1, TrainLoss: e.Loss, TrainAccuracy: e.Accuracy, TestAccuracy: -1}
			line := map[string]any{"epoch": e.Epoch + 1, "loss": e.Loss, "train_accuracy": e.Accuracy, "samples": e.Samples}
			if opts.EvalEpochs {
				if acc, err := evalEpoch(); err == nil {
					pt.TestAccuracy = acc
					line["test_accuracy_go"] = acc
				}
			}
			appendEpoch(ckpt+".epochs.jsonl", pt)
			enc.Encode(line)
		},
	})
	prog.clear()
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return fmt.Errorf("train: interrupted; checkpoint saved to %s, rerun with --resume: %w", ckpt, err)
		}
		return err
	}
	rep.TestGo, err = evaluate()
	if err != nil {
		return err
	}
	for _, in := range m.Graph.Initializers {
		rep.Params += in.Value.Len()
	}
	csam.SetMetadata(m, map[string]string{
		"csam.tool_version": Version, "csam.command": rep.Command, "csam.seed": fmt.Sprint(opts.Global.Seed),
		"csam.data": opts.Data, "csam.epochs": fmt.Sprint(opts.Epochs),
	})
	restoreBatch()
	restoreDims()
	unwrapNorm()
	csam.SetMetadata(m, inputMetadata(norm, nhwc))
	if err := onnxio.WriteFile(opts.Output, m); err != nil {
		return err
	}
	sess, ortEval, err := ortAccuracy(ctx, ortLib, opts.Output, test, opts.Global.Threads, norm, nhwc)
	if err != nil {
		return err
	}
	sess.Close()
	rep.TestORT = ortEval
	rep.ORTAccuracy = rep.TestORT.Accuracy()
	rep.ORTVersion = runtime.Version()
	rep.WallSeconds = time.Since(start).Seconds()
	rep.Epochs = readEpochs(ckpt + ".epochs.jsonl")
	if err := writeJSON(opts.Output+".json", rep); err != nil {
		return err
	}
	if len(rep.Epochs) > 0 {
		png, err := report.TrainingCurves(strings.TrimSuffix(filepath.Base(opts.Output), ".onnx"), rep.Epochs)
		if err != nil {
			return err
		}
		if err := os.WriteFile(opts.Output+".curves.png", png, 0o644); err != nil {
			return err
		}
	}
	fmt.Fprintf(opts.IO.ErrOut, "wrote %s: test accuracy %.2f%% in onnxruntime (%.2f%% in the Go engine), %d parameters, %.0f s\n",
		opts.Output, 100*rep.ORTAccuracy, 100*rep.TestGo.Accuracy, rep.Params, rep.WallSeconds)
	os.Remove(ckpt)
	os.Remove(ckpt + ".epochs.jsonl")
	return nil
}

// appendEpoch records one epoch's figures next to the checkpoint, so the
// curves of a resumed run cover the epochs before the interruption too.
func appendEpoch(path string, pt report.EpochPoint) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	json.NewEncoder(f).Encode(pt)
}

// evaluateMissingEpoch appends epoch's record again with its test
// accuracy from eval when the file has the epoch only unevaluated
// (negative test accuracy); readEpochs keeps the later record. Nothing
// happens when the epoch is evaluated or absent, or when eval fails.
func evaluateMissingEpoch(path string, epoch int, eval func() (float64, error)) {
	for _, pt := range readEpochs(path) {
		if pt.Epoch != epoch || pt.TestAccuracy >= 0 {
			continue
		}
		acc, err := eval()
		if err != nil {
			return
		}
		pt.TestAccuracy = acc
		appendEpoch(path, pt)
		return
	}
}

// readEpochs reads the records appendEpoch wrote, keeping the last record
// of each epoch (an epoch can be recorded twice when a run is killed
// between recording it and checkpointing), in epoch order.
func readEpochs(path string) []report.EpochPoint {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	byEpoch := map[int]report.EpochPoint{}
	for _, line := range strings.Split(string(b), "\n") {
		var pt report.EpochPoint
		if json.Unmarshal([]byte(line), &pt) == nil && pt.Epoch > 0 {
			byEpoch[pt.Epoch] = pt
		}
	}
	var out []report.EpochPoint
	for e := 1; len(out) < len(byEpoch); e++ {
		if pt, ok := byEpoch[e]; ok {
			out = append(out, pt)
		}
		if e > 1_000_000 {
			break
		}
	}
	return out
}

// outputClasses is the size of the model's first output's last dimension,
// or 0 when it is not fixed.
func outputClasses(m *graph.Model) int {
	if len(m.Graph.Outputs) == 0 || m.Graph.Outputs[0].Type == nil {
		return 0
	}
	sh := m.Graph.Outputs[0].Type.Shape
	if len(sh) == 0 || !sh[len(sh)-1].HasValue {
		return 0
	}
	// [N, K, 1, ...]: the scores of an unflattened convolutional head.
	if len(sh) > 2 && sh[1].HasValue && slices.IndexFunc(sh[2:], func(d graph.Dim) bool { return !d.HasValue || d.Value != 1 }) < 0 {
		return int(sh[1].Value)
	}
	return int(sh[len(sh)-1].Value)
}

// writeJSON writes v as indented JSON to path atomically.
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
