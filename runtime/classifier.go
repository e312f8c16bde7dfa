package runtime

import (
	"context"
	"fmt"
	"iter"
	"math/rand/v2"
	"slices"

	"github.com/csam-onnx/csam-onnx/tensor"
)

// Batch is a batch of labelled images: Images is a float32 tensor
// [N, C, H, W] (any per-image shape the model takes) with pixels in
// [0, 1], Labels has N class indices.
type Batch struct {
	Images *tensor.Tensor
	Labels []int
	// Index, when not nil, holds each image's position in the whole data
	// set. Per-sample results carry it, and per-sample randomness is drawn
	// from it, so that a data set split into shards gives the same
	// per-sample results as one run. nil means the position in the
	// sequence of batches, counted from 0.
	Index []int
}

// Batches is the input of the evaluations: a sequence of batches, ended
// early by a non-nil error. Any data source (the dataset package, an
// in-memory slice through SliceBatches) is adapted to it with a few lines.
// Batch sizes need not match the size the model is run at: evaluations
// regroup samples as they need.
type Batches = iter.Seq2[Batch, error]

// SliceBatches serves images [N, ...] and their labels as batches of at
// most size samples (the last one may be smaller). The batches share
// images' storage.
func SliceBatches(images *tensor.Tensor, labels []int, size int) Batches {
	return func(yield func(Batch, error) bool) {
		if images == nil || images.DType != tensor.Float32 || len(images.Shape) < 2 {
			yield(Batch{}, fmt.Errorf("runtime: SliceBatches: images must be a float32 tensor [N, ...], got %v", images))
			return
		}
		n := images.Shape[0]
		if len(labels) != n {
			yield(Batch{}, fmt.Errorf("runtime: SliceBatches: %d images but %d labels", n, len(labels)))
			return
		}
		if size < 1 {
			size = n
		}
		per := tensor.Numel(images.Shape[1:])
		for lo := 0; lo < n; lo += size {
			hi := min(lo+size, n)
			shape := append([]int{hi - lo}, images.Shape[1:]...)
			b := Batch{Images: tensor.FromFloat32(images.F32[lo*per:hi*per], shape...), Labels: labels[lo:hi]}
			if !yield(b, nil) {
				return
			}
		}
	}
}

// OffsetBatches numbers the samples of data from offset on (setting each
// Batch's Index to offset + position), for a shard that starts at sample
// offset of the whole data set: per-sample randomness and results then
// match a run over the whole set. Batches that already carry indices get
// offset added to them.
func OffsetBatches(data Batches, offset int) Batches {
	return func(yield func(Batch, error) bool) {
		seen := 0
		for b, err := range data {
			if err == nil {
				idx := make([]int, len(b.Labels))
				for i := range idx {
					idx[i] = offset + b.sampleIndex(i, seen)
				}
				b.Index = idx
				seen += len(b.Labels)
			}
			if !yield(b, err) {
				return
			}
		}
	}
}

// checkBatch validates one batch from a Batches sequence.
func checkBatch(b Batch) error {
	if b.Images == nil || b.Images.DType != tensor.Float32 || len(b.Images.Shape) < 2 {
		return fmt.Errorf("images must be a float32 tensor [N, C, H, W], got %v", b.Images)
	}
	if len(b.Images.F32) != b.Images.Len() {
		return fmt.Errorf("images %v hold %d values, want %d", b.Images, len(b.Images.F32), b.Images.Len())
	}
	if b.Images.Shape[0] != len(b.Labels) {
		return fmt.Errorf("%d images but %d labels", b.Images.Shape[0], len(b.Labels))
	}
	if b.Index != nil && len(b.Index) != len(b.Labels) {
		return fmt.Errorf("%d labels but %d indices", len(b.Labels), len(b.Index))
	}
	return nil
}

// sampleIndex is the data-set position of sample i of b, whose first
// sample is the seen-th of the sequence.
func (b Batch) sampleIndex(i, seen int) int {
	if b.Index != nil {
		return b.Index[i]
	}
	return seen + i
}

// Streams separate the random draws of the evaluations that share a seed.
const (
	streamCCCert    = 0x63636365727431 // "cccert1"
	streamSmoothing = 0x736d6f6f746831 // "smooth1"
	streamCorrupt   = 0x636f7272757031 // "corrup1"
)

// sampleRNG is the random source of one sample: its draws depend only on
// the seed, the evaluation (stream) and the sample's data-set index, not on
// batch sizes, shards or the samples before it.
func sampleRNG(seed, stream uint64, index int) *rand.Rand {
	return rand.New(rand.NewPCG(seed^stream, uint64(index)))
}

// classifier runs a Session as an image classifier: one float32 input
// [N, sample...] and a float32 first output [N, K] (or [N, K, 1, ...]) of
// logits.
type classifier struct {
	s        *Session
	sample   []int     // per-image shape
	per      int       // values per image
	maxBatch int       // the model's fixed batch size, or 0 when it is free
	classes  int       // K, or 0 until known
	normBuf  []float32 // the normalized batch (Session.norm)
	nhwcBuf  []float32 // the batch as [N, H, W, C] (Session.nhwc)
	bytes    bool      // the model takes uint8 images: pixels as round(255·x)
	byteBuf  []int64   // the batch as bytes (bytes)
}

// PixelBytes writes round(255·x), clamped to [0, 255], for each pixel x of
// the [0, 1] range into dst: what a model with a uint8 input is given
// (the camera's bytes). Values outside [0, 1] (randomized smoothing's
// noise) are clamped; NaN gives 0.
func PixelBytes(dst []int64, x []float32) {
	for i, v := range x {
		dst[i] = int64(min(max(v*255+0.5, 0), 255)) // truncates toward zero: rounds half up
		if v != v {
			dst[i] = 0
		}
	}
}

// toChannelsLast writes images [C, plane] one after another in x as
// [plane, C] into dst.
func toChannelsLast(dst, x []float32, c, plane int) {
	for i := 0; i < len(x); i += c * plane {
		img, d := x[i:i+c*plane], dst[i:i+c*plane]
		for ch := range c {
			for p, v := range img[ch*plane : (ch+1)*plane] {
				d[p*c+ch] = v
			}
		}
	}
}

// newClassifier checks that s can classify images of the given per-image
// shape, and says what does not fit.
func newClassifier(s *Session, sample []int) (*classifier, error) {
	if len(s.inputs) != 1 {
		return nil, fmt.Errorf("runtime: %s: a classifier takes one image input, the model has %d inputs (%s)", s.name, len(s.inputs), infoNames(s.inputs))
	}
	in := s.inputs[0]
	if in.Kind != "tensor" || (in.DType != tensor.Float32 && in.DType != tensor.Uint8) {
		return nil, fmt.Errorf("runtime: %s: input %s: a classifier takes a float32 image tensor (or uint8 bytes 0–255)", s.name, in)
	}
	c := &classifier{s: s, sample: slices.Clone(sample), per: tensor.Numel(sample), bytes: in.DType == tensor.Uint8}
	if c.bytes && s.norm != nil {
		return nil, fmt.Errorf("runtime: %s: input %s takes bytes 0–255; an input normalization outside the model does not apply to it", s.name, in)
	}
	// model is the image shape the model takes: sample, or [H, W, C].
	model := c.sample
	if s.nhwc {
		if len(sample) != 3 {
			return nil, fmt.Errorf("runtime: %s: a channels-last model needs images [C, H, W], the data has %v", s.name, sample)
		}
		model = []int{sample[1], sample[2], sample[0]}
	}
	if s.norm != nil {
		if len(sample) == 0 {
			return nil, fmt.Errorf("runtime: %s: input normalization needs images [C, ...]", s.name)
		}
		if err := s.norm.Validate(sample[0]); err != nil {
			return nil, fmt.Errorf("runtime: %s: %w", s.name, err)
		}
	}
	if len(in.Shape) > 0 {
		fits := len(in.Shape) == len(model)+1
		for i := 0; fits && i < len(model); i++ {
			fits = in.Shape[i+1] < 0 || in.Shape[i+1] == int64(model[i])
		}
		if !fits {
			return nil, fmt.Errorf("runtime: %s: input %q takes %v (-1 = any), but the data has images of shape %v (the model's layout: %v); use data of the size the model was trained on", s.name, in.Name, in.Shape, sample, model)
		}
		if in.Shape[0] > 0 {
			c.maxBatch = int(in.Shape[0])
		}
	}
	out := s.outputs[0]
	if out.Kind != "tensor" || out.DType != tensor.Float32 {
		return nil, fmt.Errorf("runtime: %s: output %s: a classifier gives float32 logits [N, classes]", s.name, out)
	}
	if len(out.Shape) > 0 && !classShape(out.Shape) {
		return nil, fmt.Errorf("runtime: %s: output %s: a classifier gives logits [N, classes] (or [N, classes, 1, ...]), this has shape %v", s.name, out, out.Shape)
	}
	if len(out.Shape) >= 2 && out.Shape[1] > 0 {
		c.classes = int(out.Shape[1])
	}
	return c, nil
}

// classShape reports whether a declared output shape can be [N, K] or
// [N, K, 1, ...] (the scores of a convolutional head that is not
// flattened, as Caffe2's SqueezeNet gives them); -1 is any size.
func classShape(shape []int64) bool {
	if len(shape) < 2 {
		return false
	}
	for _, d := range shape[2:] {
		if d != 1 && d >= 0 {
			return false
		}
	}
	return true
}

// logits runs n images held contiguously in x (n·per values) and returns
// their n·K logits, running at most batch images at a time (and never more
// than the model's fixed batch size).
func (c *classifier) logits(ctx context.Context, x []float32, n, batch int) ([]float32, error) {
	if len(x) != n*c.per {
		return nil, fmt.Errorf("runtime: %s: %d values for %d images of shape %v", c.s.name, len(x), n, c.sample)
	}
	if batch < 1 || batch > n {
		batch = n
	}
	if c.maxBatch > 0 {
		batch = c.maxBatch
	}
	var out []float32
	if c.classes > 0 {
		out = make([]float32, 0, n*c.classes)
	}
	for lo := 0; lo < n; lo += batch {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hi := min(lo+batch, n)
		var in *tensor.Tensor
		if c.maxBatch > 0 && hi-lo < c.maxBatch {
			// A fixed-batch model gets a zero-padded last batch.
			pad := make([]float32, c.maxBatch*c.per)
			copy(pad, x[lo*c.per:hi*c.per])
			in = tensor.FromFloat32(pad, append([]int{c.maxBatch}, c.sample...)...)
		} else {
			in = tensor.FromFloat32(x[lo*c.per:hi*c.per], append([]int{hi - lo}, c.sample...)...)
		}
		if nm := c.s.norm; nm != nil {
			if cap(c.normBuf) < len(in.F32) {
				c.normBuf = make([]float32, len(in.F32))
			}
			buf := c.normBuf[:len(in.F32)]
			nm.Apply(buf, in.F32, c.per/c.sample[0])
			in = tensor.FromFloat32(buf, in.Shape...)
		}
		if c.s.nhwc {
			if cap(c.nhwcBuf) < len(in.F32) {
				c.nhwcBuf = make([]float32, len(in.F32))
			}
			buf := c.nhwcBuf[:len(in.F32)]
			ch, h, w := c.sample[0], c.sample[1], c.sample[2]
			toChannelsLast(buf, in.F32, ch, h*w)
			in = tensor.FromFloat32(buf, in.Shape[0], h, w, ch)
		}
		if c.bytes {
			if cap(c.byteBuf) < len(in.F32) {
				c.byteBuf = make([]int64, len(in.F32))
			}
			buf := c.byteBuf[:len(in.F32)]
			PixelBytes(buf, in.F32)
			in = &tensor.Tensor{DType: tensor.Uint8, Shape: in.Shape, I64: buf}
		}
		res, err := c.s.Run([]*tensor.Tensor{in})
		if err != nil {
			return nil, err
		}
		y := res[0]
		if len(y.Shape) < 2 || tensor.Numel(y.Shape[2:]) != 1 || y.Shape[0] != in.Shape[0] || (c.classes > 0 && y.Shape[1] != c.classes) || y.Shape[1] < 1 {
			return nil, fmt.Errorf("runtime: %s: output %q has shape %v for a batch of %d; a classifier gives logits [N, classes]", c.s.name, c.s.outputs[0].Name, y.Shape, in.Shape[0])
		}
		if c.classes == 0 {
			c.classes = y.Shape[1]
			out = make([]float32, 0, n*c.classes)
		}
		out = append(out, y.F32[:(hi-lo)*c.classes]...)
	}
	return out, nil
}

// checkLabels reports labels outside the model's classes.
func (c *classifier) checkLabels(labels []int, first int) error {
	for i, l := range labels {
		if l < 0 || l >= c.classes {
			return fmt.Errorf("runtime: %s: label %d of sample %d is outside the model's %d classes; the data and the model do not fit", c.s.name, l, first+i, c.classes)
		}
	}
	return nil
}

// Classes is the number of classes of a classifier model: the second
// dimension of its first output [N, K]. When the file leaves it symbolic,
// the model is run once on a zero image to find it.
func (s *Session) Classes() (int, error) {
	if len(s.inputs) != 1 || (s.inputs[0].DType != tensor.Float32 && s.inputs[0].DType != tensor.Uint8) || len(s.inputs[0].Shape) < 2 {
		return 0, fmt.Errorf("runtime: %s: not an image classifier: inputs %s", s.name, infoNames(s.inputs))
	}
	out := s.outputs[0]
	if len(out.Shape) == 2 && out.Shape[1] > 0 {
		return int(out.Shape[1]), nil
	}
	sample := make([]int, len(s.inputs[0].Shape)-1)
	for i, d := range s.inputs[0].Shape[1:] {
		if d < 1 {
			return 0, fmt.Errorf("runtime: %s: the class count is symbolic and input %s has symbolic image dimensions: run it on data to find out", s.name, s.inputs[0])
		}
		sample[i] = int(d)
	}
	c, err := newClassifier(s, sample)
	if err != nil {
		return 0, err
	}
	if _, err := c.logits(context.Background(), make([]float32, c.per), 1, 1); err != nil {
		return 0, err
	}
	return c.classes, nil
}

// SameTask checks that baseline can stand in for model in a comparison:
// both are classifiers with the same image input shape and the same number
// of classes.
func SameTask(model, baseline *Session) error {
	km, err := model.Classes()
	if err != nil {
		return err
	}
	kb, err := baseline.Classes()
	if err != nil {
		return err
	}
	if km != kb {
		return fmt.Errorf("runtime: baseline %s has %d classes, the model %s has %d; compare models of the same task", baseline.name, kb, model.name, km)
	}
	im, ib := model.inputs[0].Shape[1:], baseline.inputs[0].Shape[1:]
	if len(im) != len(ib) {
		return fmt.Errorf("runtime: baseline %s takes images %v, the model %s takes %v", baseline.name, ib, model.name, im)
	}
	for i := range im {
		if im[i] > 0 && ib[i] > 0 && im[i] != ib[i] {
			return fmt.Errorf("runtime: baseline %s takes images %v, the model %s takes %v", baseline.name, ib, model.name, im)
		}
	}
	return nil
}
