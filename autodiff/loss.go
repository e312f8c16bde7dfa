package autodiff

import (
	"fmt"
	"math"

	"github.com/csam-onnx/csam-onnx/tensor"
)

// SoftmaxCrossEntropy is the training loss: the mean over the batch of the
// cross-entropy between softmax(logits) and the label distribution
// q = (1-smoothing)·onehot(label) + smoothing/C (label smoothing, Szegedy
// et al. 2016, "Rethinking the Inception Architecture", §7).
//
// logits has shape [N, C] (or [N, C, 1, ...]: trailing axes of size 1 are
// allowed); labels has N classes in [0, C). It returns the mean loss and
// the number of rows whose largest logit is the label (first maximum on
// ties), and, when dLogits is non-nil, overwrites dLogits (same size as
// logits) with d loss/d logits = (softmax - q)/N, ready for
// Program.Backward.
//
// Bad input (shape, label range, smoothing outside [0, 1]) is an error. NaN
// or ±Inf logits are not an error: they give a NaN loss and NaN gradients
// for their rows, which the caller checks (math.IsNaN) to stop training.
// The computation is in float64 and does not allocate.
func SoftmaxCrossEntropy(logits *tensor.Tensor, labels []int, smoothing float64, dLogits *tensor.Tensor) (loss float64, correct int, err error) {
	if logits == nil || logits.DType != tensor.Float32 || len(logits.Shape) < 2 {
		return 0, 0, fmt.Errorf("autodiff: SoftmaxCrossEntropy: logits %v, want float32 [N, C]", logits)
	}
	n, c := logits.Shape[0], logits.Shape[1]
	for _, d := range logits.Shape[2:] {
		if d != 1 {
			return 0, 0, fmt.Errorf("autodiff: SoftmaxCrossEntropy: logits shape %v, want [N, C]", logits.Shape)
		}
	}
	if n == 0 || c == 0 {
		return 0, 0, fmt.Errorf("autodiff: SoftmaxCrossEntropy: empty logits %v", logits.Shape)
	}
	if len(labels) != n {
		return 0, 0, fmt.Errorf("autodiff: SoftmaxCrossEntropy: %d labels for a batch of %d", len(labels), n)
	}
	if !(smoothing >= 0 && smoothing <= 1) {
		return 0, 0, fmt.Errorf("autodiff: SoftmaxCrossEntropy: label smoothing %v, want 0 <= s <= 1", smoothing)
	}
	if dLogits != nil && len(dLogits.F32) != n*c {
		return 0, 0, fmt.Errorf("autodiff: SoftmaxCrossEntropy: dLogits has %d elements, logits %v has %d", len(dLogits.F32), logits.Shape, n*c)
	}
	for i, l := range labels {
		if l < 0 || l >= c {
			return 0, 0, fmt.Errorf("autodiff: SoftmaxCrossEntropy: label %d of row %d is outside [0, %d): the data has more classes than the model", l, i, c)
		}
	}
	off := smoothing / float64(c)
	on := 1 - smoothing + off
	invN := 1 / float64(n)
	var total float64
	for i := range n {
		row := logits.F32[i*c : (i+1)*c]
		mx, arg := float64(row[0]), 0
		for j, v := range row {
			if float64(v) > mx {
				mx, arg = float64(v), j
			}
		}
		if arg == labels[i] {
			correct++
		}
		var sum float64
		for _, v := range row {
			sum += math.Exp(float64(v) - mx)
		}
		lse := mx + math.Log(sum)
		// loss_i = Σ_j q_j (lse - z_j)
		var li float64
		for j, v := range row {
			q := off
			if j == labels[i] {
				q = on
			}
			if q != 0 { // a -Inf logit with no target mass costs nothing
				li += q * (lse - float64(v))
			}
		}
		total += li
		if dLogits != nil {
			g := dLogits.F32[i*c : (i+1)*c]
			for j, v := range row {
				q := off
				if j == labels[i] {
					q = on
				}
				g[j] = float32((math.Exp(float64(v)-lse) - q) * invN)
			}
		}
	}
	return total * invN, correct, nil
}
