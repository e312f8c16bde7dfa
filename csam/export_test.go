package csam

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/csam-onnx/csam-onnx/graph"
)

// TestAnnotateKeepsTrainingProvenance: pruning a model that `train` made
// moves the training run's command, seed, data, epochs and tool version to
// csam.train.* (they would otherwise be overwritten or, for csam.epochs,
// left to read as the pruning's), keeps the architecture entries, and
// pruning the result again moves nothing a second time.
func TestAnnotateKeepsTrainingProvenance(t *testing.T) {
	m := &graph.Model{Graph: &graph.Graph{}, Metadata: []graph.StringPair{
		{Key: "csam.arch", Value: "resnet18"},
		{Key: "csam.command", Value: "csam-onnx train --arch resnet18"},
		{Key: "csam.seed", Value: "7"},
		{Key: "csam.data", Value: "cifar10:/data"},
		{Key: "csam.epochs", Value: "40"},
		{Key: "csam.tool_version", Value: "0.1.0-old"},
		{Key: "other", Value: "x"},
	}}
	cfg := DefaultConfig("magnitude")
	cfg.Seed = 3
	res := &Result{Method: "magnitude", Sparsity: 0.9}
	p := Provenance{ToolVersion: "0.1.0-new", Data: "cifar10:/data2", Command: "csam-onnx compress m.onnx"}
	get := func() map[string]string {
		out := map[string]string{}
		for _, kv := range m.Metadata {
			if _, dup := out[kv.Key]; dup {
				t.Fatalf("metadata key %q appears twice", kv.Key)
			}
			out[kv.Key] = kv.Value
		}
		return out
	}
	if err := Annotate(m, res, cfg, p); err != nil {
		t.Fatal(err)
	}
	first := get()
	want := map[string]string{
		"csam.arch": "resnet18", "other": "x",
		"csam.train.command": "csam-onnx train --arch resnet18", "csam.train.seed": "7", "csam.train.data": "cifar10:/data",
		"csam.train.epochs": "40", "csam.train.tool_version": "0.1.0-old",
		"csam.command": "csam-onnx compress m.onnx", "csam.seed": "3", "csam.data": "cifar10:/data2", "csam.tool_version": "0.1.0-new",
	}
	for k, v := range want {
		if first[k] != v {
			t.Errorf("%s = %q, want %q", k, first[k], v)
		}
	}
	if _, ok := first["csam.epochs"]; ok {
		t.Error("csam.epochs is still set: it would read as the pruning run's")
	}
	p.Command = "csam-onnx compress again"
	if err := Annotate(m, res, cfg, p); err != nil {
		t.Fatal(err)
	}
	second := get()
	first["csam.command"] = "csam-onnx compress again"
	if d := cmp.Diff(first, second); d != "" {
		t.Errorf("a second pruning changed more than its own command (-first +second):\n%s", d)
	}
}

// TestAnnotateCSAMSettings: a C-SAM file records its variant, radius and
// normalization, and the initialization percentile only when one was
// given (the default is the sparsity percentile, implied by the sparsity).
func TestAnnotateCSAMSettings(t *testing.T) {
	for _, tau := range []float64{0, 100} {
		m := &graph.Model{Graph: &graph.Graph{}}
		cfg := DefaultConfig("csam")
		cfg.InitPercentile = tau
		if err := Annotate(m, &Result{Method: "csam", Sparsity: 0.9}, cfg, Provenance{}); err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, kv := range m.Metadata {
			got[kv.Key] = kv.Value
		}
		if got["csam.variant"] != "A" || got["csam.rho"] != "0.05" || got["csam.rho_norm"] != "layer" {
			t.Errorf("τ=%v: C-SAM settings %v", tau, got)
		}
		if v, ok := got["csam.init_percentile"]; (tau == 0) == ok || (ok && v != "100") {
			t.Errorf("τ=%v: csam.init_percentile = %q (set: %v)", tau, v, ok)
		}
	}
}
