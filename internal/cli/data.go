package cli

import (
	"context"
	"fmt"
	"io"
	"math"

	"github.com/spf13/pflag"

	"github.com/csam-onnx/csam-onnx/dataset"
	"github.com/csam-onnx/csam-onnx/runtime"
)

// dataFlags are the data-loading flags of the commands that read --data.
type dataFlags struct {
	SkipBad bool
	// cmd prefixes notes; errOut receives them (set by the command).
	cmd    string
	errOut io.Writer
}

func (d *dataFlags) register(f *pflag.FlagSet) {
	f.BoolVar(&d.SkipBad, "skip-bad", false, "skip image files that do not decode (image folders and JPEG tarballs), counting them, instead of stopping at the first")
}

// with sets the command name and the writer of the notes.
func (d *dataFlags) with(cmd string, errOut io.Writer) *dataFlags {
	d.cmd, d.errOut = cmd, errOut
	return d
}

// load loads one split of spec, refusing an empty one; the files
// --skip-bad skipped are counted in a note.
func (d *dataFlags) load(ctx context.Context, spec, split string) (*dataset.Dataset, error) {
	s, err := dataset.Parse(spec)
	if err != nil {
		return nil, fmt.Errorf("--data %s: %w", spec, err)
	}
	s.SkipBad = d.SkipBad
	ds, err := s.Load(ctx, split)
	if err != nil {
		return nil, fmt.Errorf("--data %s: %w", spec, err)
	}
	if ds.Len() == 0 {
		return nil, fmt.Errorf("--data %s: the %s split holds no images", spec, split)
	}
	if n := len(ds.Skipped); n > 0 && d.errOut != nil {
		fmt.Fprintf(d.errOut, "%s: note: --data %s: skipped %d undecodable files of the %s split (--skip-bad), the first %s\n", d.cmd, spec, n, split, ds.Skipped[0])
	}
	return ds, nil
}

// loadSplits loads the training and test splits of a data spec. The test
// split is "test"; a data set without one is an error that says so.
func loadSplits(ctx context.Context, spec string, needTrain bool, df *dataFlags) (train, test *dataset.Dataset, err error) {
	if df == nil {
		df = &dataFlags{}
	}
	if needTrain {
		if train, err = df.load(ctx, spec, "train"); err != nil {
			return nil, nil, err
		}
	}
	if test, err = df.load(ctx, spec, "test"); err != nil {
		return nil, nil, err
	}
	if train != nil {
		if err := train.SameClasses(test); err != nil {
			return nil, nil, fmt.Errorf("--data %s: %w", spec, err)
		}
	}
	return train, test, nil
}

// ortBatches serves a data set to the runtime evaluations, in order.
func ortBatches(ctx context.Context, d *dataset.Dataset, batch int) runtime.Batches {
	return func(yield func(runtime.Batch, error) bool) {
		for b, err := range d.Batches(ctx, batch, dataset.BatchOptions{}) {
			if !yield(runtime.Batch{Images: b.Images, Labels: b.Labels}, err) || err != nil {
				return
			}
		}
	}
}

// channelStats returns the per-channel mean and standard deviation of a
// data set's pixels in [0,1] (over at most 10,000 images), which a new
// model uses to normalize its input.
func channelStats(d *dataset.Dataset) (mean, std []float32) {
	n := min(d.Len(), 10000)
	c, hw := d.C, d.H*d.W
	sum := make([]float64, c)
	sq := make([]float64, c)
	for i := 0; i < n; i++ {
		raw := d.Raw(i)
		for ch := 0; ch < c; ch++ {
			for _, v := range raw[ch*hw : (ch+1)*hw] {
				x := float64(v) / 255
				sum[ch] += x
				sq[ch] += x * x
			}
		}
	}
	mean = make([]float32, c)
	std = make([]float32, c)
	cnt := float64(n * hw)
	for ch := 0; ch < c; ch++ {
		m := sum[ch] / cnt
		v := sq[ch]/cnt - m*m
		if v < 1e-6 {
			v = 1e-6
		}
		mean[ch] = float32(m)
		std[ch] = float32(math.Sqrt(v))
	}
	return mean, std
}

// ortAccuracy opens the written model file in onnxruntime and measures its
// clean accuracy on d. The caller closes the session.
func ortAccuracy(ctx context.Context, lib, path string, d *dataset.Dataset, threads int, norm *runtime.Normalization, nhwc bool) (*runtime.Session, runtime.Eval, error) {
	if err := runtime.Init(lib); err != nil {
		return nil, runtime.Eval{}, err
	}
	sess, err := runtime.Open(path, &runtime.SessionOptions{IntraOpThreads: threads, Normalize: norm, ChannelsLast: nhwc})
	if err != nil {
		return nil, runtime.Eval{}, err
	}
	e, err := runtime.Accuracy(ctx, sess, ortBatches(ctx, d, 256), 256)
	if err != nil {
		sess.Close()
		return nil, runtime.Eval{}, err
	}
	return sess, e, nil
}

// fitChannels gives a model that wants c channels the data it can take:
// gray images replicated to RGB for a 3-channel model, RGB reduced to luma
// for a 1-channel one (image folders always decode as RGB), saying so on
// errOut once per command (noted). Other counts are left for Fits to refuse.
func fitChannels(d *dataset.Dataset, c int, spec, cmd string, errOut io.Writer, noted *bool) *dataset.Dataset {
	if d == nil || c <= 0 || d.C == c {
		return d
	}
	out, err := d.WithChannels(c)
	if err != nil {
		return d
	}
	if !*noted {
		*noted = true
		how := "replicated to 3 channels"
		if c == 1 {
			how = "reduced to 1 channel (luma, as PIL's convert('L'))"
		}
		fmt.Fprintf(errOut, "%s: note: --data %s: its %d-channel images are %s for the model\n", cmd, spec, d.C, how)
	}
	return out
}
