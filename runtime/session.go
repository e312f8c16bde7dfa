package runtime

import (
	"errors"
	"fmt"
	"math"
	"os"
	"reflect"
	"strings"
	"sync"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/csam-onnx/csam-onnx/tensor"
)

// DefaultIntraOpThreads is the intra-op thread count of a session whose
// options leave it zero: the two cores of the machines this project runs on.
const DefaultIntraOpThreads = 2

// SessionOptions configures a Session. A nil *SessionOptions means all
// defaults.
type SessionOptions struct {
	// IntraOpThreads is onnxruntime's intra-op thread pool size; 0 means
	// DefaultIntraOpThreads.
	IntraOpThreads int
	// DisableSpinning stops onnxruntime's idle worker threads from
	// busy-waiting between runs. Spinning lowers latency; disabling it
	// frees the cores for other work between small runs.
	DisableSpinning bool
	// Name is used in errors about a model opened with OpenBytes (for
	// example the file it came from); empty means "in-memory model".
	Name string
	// Normalize, when set, is the input normalization the model expects
	// outside it: the classifier evaluations (Accuracy, the corruption
	// sweep, CC-Cert, smoothing) keep working on [0, 1] pixels and map
	// each batch through it just before running the model. Run itself
	// passes its inputs unchanged.
	Normalize *Normalization
	// ChannelsLast says the model takes images [N, H, W, C] (Keras and
	// tf2onnx exports): the classifier evaluations keep images as
	// [C, H, W] and transpose each batch (after Normalize) just before
	// running the model.
	ChannelsLast bool
}

// Normalization is a per-channel map of [0, 1] pixels to the values a
// model was trained on: (x - Mean[c]) / Std[c] (torchvision's Normalize).
type Normalization struct {
	Mean, Std []float32
}

// Validate checks that Mean and Std have one value per channel and that
// every Std is positive and finite.
func (n *Normalization) Validate(channels int) error {
	if len(n.Mean) != len(n.Std) {
		return fmt.Errorf("input normalization: %d means and %d standard deviations; give one of each per channel", len(n.Mean), len(n.Std))
	}
	if channels > 0 && len(n.Mean) != channels {
		return fmt.Errorf("input normalization: %d values per statistic, the images have %d channel(s)", len(n.Mean), channels)
	}
	for i, v := range n.Std {
		if !(v > 0) || math.IsInf(float64(v), 0) || math.IsNaN(float64(n.Mean[i])) || math.IsInf(float64(n.Mean[i]), 0) {
			return fmt.Errorf("input normalization: channel %d has mean %v and std %v; want a finite mean and a positive, finite std", i, n.Mean[i], v)
		}
	}
	return nil
}

// Apply maps x (images [C, ...] one after another, n values per channel
// plane) into dst.
func (n *Normalization) Apply(dst, x []float32, plane int) {
	c := len(n.Mean)
	for i := 0; i < len(x); i += c * plane {
		for ch := range c {
			m, inv := n.Mean[ch], 1/n.Std[ch]
			src, d := x[i+ch*plane:i+(ch+1)*plane], dst[i+ch*plane:i+(ch+1)*plane]
			for j, v := range src {
				d[j] = (v - m) * inv
			}
		}
	}
}

// IOInfo describes one input or output of a model as onnxruntime sees it.
type IOInfo struct {
	Name string
	// DType is the element type; tensor.Undefined for a non-tensor value
	// (sequence, map, optional), which Run does not support.
	DType tensor.DType
	// Shape has -1 for each symbolic or unknown dimension. A tensor of
	// unknown rank is reported with an empty Shape, like a scalar.
	Shape []int64
	// Kind is "tensor", or what the value is otherwise ("sequence", "map",
	// "sparse tensor", "optional", "opaque").
	Kind string
}

func (io IOInfo) String() string {
	if io.Kind != "tensor" {
		return fmt.Sprintf("%s (%s)", io.Name, io.Kind)
	}
	return fmt.Sprintf("%s %s%v", io.Name, io.DType, io.Shape)
}

// Session is an onnxruntime inference session for one model. Run may be
// called from several goroutines at once; Close must not run concurrently
// with anything else and ends the session's life: the caller that opened a
// Session closes it.
type Session struct {
	name    string // model path, or SessionOptions.Name, for errors
	mu      sync.RWMutex
	sess    *ort.DynamicAdvancedSession
	inputs  []IOInfo
	outputs []IOInfo
	norm    *Normalization // SessionOptions.Normalize
	nhwc    bool           // SessionOptions.ChannelsLast
}

// Open creates a session for the model file at path (external data is
// resolved by onnxruntime relative to the file). Init must have been
// called.
func Open(path string, opts *SessionOptions) (*Session, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("runtime: open model %q: %w", path, err)
	}
	return open(path, path, nil, opts)
}

// OpenBytes creates a session for a serialized model held in memory (a model
// with external data cannot be opened this way). Errors name opts.Name.
func OpenBytes(model []byte, opts *SessionOptions) (*Session, error) {
	name := "in-memory model"
	if opts != nil && opts.Name != "" {
		name = opts.Name
	}
	if len(model) == 0 {
		return nil, fmt.Errorf("runtime: %s: empty model", name)
	}
	return open(name, "", model, opts)
}

func open(name, path string, data []byte, opts *SessionOptions) (s *Session, err error) {
	if !Initialized() {
		return nil, fmt.Errorf("runtime: %s: onnxruntime is not initialized; call runtime.Init(runtime.FindLibrary(...)) first", name)
	}
	var o SessionOptions
	if opts != nil {
		o = *opts
	}
	if o.IntraOpThreads < 0 {
		return nil, fmt.Errorf("runtime: %s: IntraOpThreads = %d, want ≥ 0 (0 means %d)", name, o.IntraOpThreads, DefaultIntraOpThreads)
	}
	if o.IntraOpThreads == 0 {
		o.IntraOpThreads = DefaultIntraOpThreads
	}
	so, err := ort.NewSessionOptions()
	if err != nil {
		return nil, ortError("create session options", name, err)
	}
	// The options are copied into the session; they are released whatever
	// happens below.
	defer so.Destroy()
	if err := so.SetIntraOpNumThreads(o.IntraOpThreads); err != nil {
		return nil, ortError("set intra-op threads", name, err)
	}
	if err := so.SetInterOpNumThreads(1); err != nil {
		return nil, ortError("set inter-op threads", name, err)
	}
	if o.DisableSpinning {
		if err := so.AddSessionConfigEntry("session.intra_op.allow_spinning", "0"); err != nil {
			return nil, ortError("disable spinning", name, err)
		}
	}

	ins, outs, err := discover(path, data)
	if err != nil {
		return nil, ortError("load model", name, err)
	}
	s = &Session{name: name, inputs: convertInfo(ins), outputs: convertInfo(outs), norm: o.Normalize, nhwc: o.ChannelsLast}
	inNames := make([]string, len(ins))
	for i, in := range ins {
		inNames[i] = in.Name
	}
	outNames := make([]string, len(outs))
	for i, out := range outs {
		outNames[i] = out.Name
	}
	if data != nil {
		s.sess, err = ort.NewDynamicAdvancedSessionWithONNXData(data, inNames, outNames, so)
	} else {
		s.sess, err = ort.NewDynamicAdvancedSession(path, inNames, outNames, so)
	}
	if err != nil {
		return nil, ortError("create session", name, err)
	}
	return s, nil
}

// discover lists a model's inputs and outputs. The binding can only do it
// through a temporary session; that session is created from a file with
// graph optimizations off, so that it costs a parse rather than a full
// session set-up (constant folding can take seconds on large models). A
// model in memory is written to a temporary file for it.
func discover(path string, data []byte) (ins, outs []ort.InputOutputInfo, err error) {
	if data != nil {
		f, err := os.CreateTemp("", "csam-onnx-*.onnx")
		if err != nil {
			return ort.GetInputOutputInfoWithONNXData(data)
		}
		tmp := f.Name()
		defer os.Remove(tmp)
		_, werr := f.Write(data)
		if cerr := f.Close(); werr != nil || cerr != nil {
			return ort.GetInputOutputInfoWithONNXData(data)
		}
		ins, outs, err = discover(tmp, nil)
		if err != nil {
			// The temporary file's name would only confuse.
			err = errors.New(strings.ReplaceAll(err.Error(), tmp, "<model bytes>"))
		}
		return ins, outs, err
	}
	so, err := ort.NewSessionOptions()
	if err != nil {
		return nil, nil, err
	}
	defer so.Destroy()
	if err := so.SetGraphOptimizationLevel(ort.GraphOptimizationLevelDisableAll); err != nil {
		return nil, nil, err
	}
	if err := so.SetIntraOpNumThreads(1); err != nil {
		return nil, nil, err
	}
	return ort.GetInputOutputInfoWithOptions(path, so)
}

func convertInfo(infos []ort.InputOutputInfo) []IOInfo {
	out := make([]IOInfo, len(infos))
	for i, in := range infos {
		io := IOInfo{Name: in.Name, Kind: kindName(in.OrtValueType)}
		if io.Kind == "tensor" {
			io.DType = tensor.DType(in.DataType)
			io.Shape = append([]int64{}, in.Dimensions...)
		}
		out[i] = io
	}
	return out
}

func kindName(t ort.ONNXType) string {
	switch t {
	case ort.ONNXTypeTensor:
		return "tensor"
	case ort.ONNXTypeSequence:
		return "sequence"
	case ort.ONNXTypeMap:
		return "map"
	case ort.ONNXTypeSparseTensor:
		return "sparse tensor"
	case ort.ONNXTypeOptional:
		return "optional"
	case ort.ONNXTypeOpaque:
		return "opaque"
	}
	return "unknown"
}

// Name is the model path given to Open, or SessionOptions.Name.
func (s *Session) Name() string { return s.name }

// Inputs describes the model's inputs in the order Run takes them.
func (s *Session) Inputs() []IOInfo { return cloneInfo(s.inputs) }

// Outputs describes the model's outputs in the order Run returns them.
func (s *Session) Outputs() []IOInfo { return cloneInfo(s.outputs) }

func cloneInfo(in []IOInfo) []IOInfo {
	out := make([]IOInfo, len(in))
	for i, io := range in {
		io.Shape = append([]int64(nil), io.Shape...)
		out[i] = io
	}
	return out
}

// Close releases the session. Closing a closed session is a no-op.
func (s *Session) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sess == nil {
		return nil
	}
	err := s.sess.Destroy()
	s.sess = nil
	if err != nil {
		return ortError("close", s.name, err)
	}
	return nil
}

// ErrClosed is returned by Run on a closed session.
var ErrClosed = errors.New("runtime: session is closed")

// Run runs the model on inputs, given in the order of Inputs(), and returns
// every output in the order of Outputs(). Outputs are allocated by
// onnxruntime and copied into new tensors the caller owns; the inputs are
// only read. Supported element types: float32, float64, all integer types
// and bool (held in tensor.Tensor.I64), strings, and float16/bfloat16 as raw
// bytes (float16 and bfloat16 outputs only at a static shape). Models
// without inputs or outputs, and non-tensor values, cannot be run through
// the binding and give an error.
func (s *Session) Run(inputs []*tensor.Tensor) ([]*tensor.Tensor, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.sess == nil {
		return nil, fmt.Errorf("%w: %s", ErrClosed, s.name)
	}
	if len(s.inputs) == 0 {
		return nil, fmt.Errorf("runtime: %s: the model has no inputs; onnxruntime_go cannot run such a model (fold it into constants instead)", s.name)
	}
	if len(s.outputs) == 0 {
		return nil, fmt.Errorf("runtime: %s: the model has no outputs", s.name)
	}
	if len(inputs) != len(s.inputs) {
		return nil, fmt.Errorf("runtime: %s: Run got %d inputs, the model takes %d (%s)", s.name, len(inputs), len(s.inputs), infoNames(s.inputs))
	}
	for _, out := range s.outputs {
		if out.Kind != "tensor" {
			return nil, fmt.Errorf("runtime: %s: output %q is a %s; only tensor outputs are supported", s.name, out.Name, out.Kind)
		}
		if rawSize(out.DType) > 0 && (len(out.Shape) == 0 || !static(out.Shape)) {
			return nil, fmt.Errorf("runtime: %s: output %s: onnxruntime_go cannot return %s outputs of dynamic or unknown shape (it truncates them); give the output a static shape or cast it to float32", s.name, out, out.DType)
		}
	}
	vals := make([]ort.Value, len(inputs))
	defer destroyAll(vals)
	for i, t := range inputs {
		if err := checkInput(s.inputs[i], t); err != nil {
			return nil, fmt.Errorf("runtime: %s: %w", s.name, err)
		}
		v, err := toORT(t)
		if err != nil {
			return nil, fmt.Errorf("runtime: %s: input %q: %w", s.name, s.inputs[i].Name, err)
		}
		vals[i] = v
	}

	// Pre-allocate the outputs the binding cannot allocate itself
	// (declared rank 0; 2-byte types, which it would truncate).
	outs, err := s.runOnce(vals, s.plan(true))
	if err != nil && hasScalar(s.outputs) {
		// A declared rank 0 may also mean "rank unknown": retry with those
		// outputs left to onnxruntime.
		if outs2, err2 := s.runOnce(vals, s.plan(false)); err2 == nil {
			outs, err = outs2, nil
		}
	}
	if err != nil {
		return nil, err
	}
	defer destroyAll(outs)
	res := make([]*tensor.Tensor, len(outs))
	for j, v := range outs {
		t, err := fromORT(v)
		if err != nil {
			return nil, fmt.Errorf("runtime: %s: output %q: %w", s.name, s.outputs[j].Name, err)
		}
		res[j] = t
	}
	return res, nil
}

func infoNames(infos []IOInfo) string {
	names := make([]string, len(infos))
	for i, in := range infos {
		names[i] = in.String()
	}
	return strings.Join(names, ", ")
}

func checkInput(info IOInfo, t *tensor.Tensor) error {
	if t == nil {
		return fmt.Errorf("input %q is nil", info.Name)
	}
	if info.Kind != "tensor" {
		return fmt.Errorf("input %q is a %s; only tensor inputs are supported", info.Name, info.Kind)
	}
	if info.DType != t.DType {
		return fmt.Errorf("input %q: got %s, the model wants %s", info.Name, t.DType, info.DType)
	}
	if len(info.Shape) == 0 {
		return nil // scalar or rank not declared
	}
	bad := len(info.Shape) != len(t.Shape)
	for i := 0; !bad && i < len(t.Shape); i++ {
		bad = info.Shape[i] >= 0 && info.Shape[i] != int64(t.Shape[i])
	}
	if bad {
		return fmt.Errorf("input %q: got shape %v, the model wants %v (-1 = any)", info.Name, t.Shape, info.Shape)
	}
	return nil
}

// plan returns the output slots for one run: nil slots are allocated by
// onnxruntime, the others are pre-allocated here: outputs of a 2-byte type
// (whose shapes Run has checked are static) and, with scalars, outputs
// declared rank 0.
func (s *Session) plan(scalars bool) []ort.Value {
	outs := make([]ort.Value, len(s.outputs))
	for j, info := range s.outputs {
		switch {
		case len(info.Shape) == 0 && scalars && nativeType(info.DType):
			if v, err := newScalarOutput(info.DType); err == nil {
				outs[j] = v
			}
		case rawSize(info.DType) > 0:
			n := int64(rawSize(info.DType))
			for _, d := range info.Shape {
				n *= d
			}
			if n == 0 {
				continue
			}
			v, err := ort.NewCustomDataTensor(ort.NewShape(info.Shape...), make([]byte, n), ort.TensorElementDataType(info.DType))
			if err == nil {
				outs[j] = v
			}
		}
	}
	return outs
}

func hasScalar(infos []IOInfo) bool {
	for _, in := range infos {
		if len(in.Shape) == 0 && nativeType(in.DType) {
			return true
		}
	}
	return false
}

func static(shape []int64) bool {
	for _, d := range shape {
		if d < 0 {
			return false
		}
	}
	return true
}

// runOnce runs the session with prepared outputs; on error it releases
// every output value it holds.
func (s *Session) runOnce(ins, outs []ort.Value) ([]ort.Value, error) {
	if err := s.sess.Run(ins, outs); err != nil {
		destroyAll(outs)
		return nil, ortError("run", s.name, err)
	}
	return outs, nil
}

// destroyAll releases every value. The binding can leave typed nil
// pointers in a slice of values after a failed conversion; those are
// skipped.
func destroyAll(vals []ort.Value) {
	for i, v := range vals {
		if v != nil && !reflect.ValueOf(v).IsNil() {
			v.Destroy()
		}
		vals[i] = nil
	}
}
