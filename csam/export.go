package csam

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/csam-onnx/csam-onnx/graph"
)

// Provenance is what Annotate records in the pruned model's metadata_props.
type Provenance struct {
	ToolVersion string
	Data        string
	Command     string
}

// trainKeys are the provenance entries `csam-onnx train` writes; a model
// made by train has csam.epochs.
var trainKeys = []string{"csam.command", "csam.seed", "csam.data", "csam.epochs", "csam.tool_version"}

// Annotate records how m was pruned in its metadata_props (keys prefixed
// "csam."), replacing earlier csam.* entries of a pruning run. The
// provenance a training run left (its command, seed, data, epochs and tool
// version, which pruning would overwrite or leave mixed with its own) is
// kept under csam.train.*.
func Annotate(m *graph.Model, res *Result, cfg Config, p Provenance) error {
	meta := map[string]string{}
	for _, kv := range m.Metadata {
		meta[kv.Key] = kv.Value
	}
	if _, trained := meta["csam.epochs"]; trained {
		moved := map[string]string{}
		for _, k := range trainKeys {
			if v, ok := meta[k]; ok {
				if _, done := meta["csam.train."+strings.TrimPrefix(k, "csam.")]; !done {
					moved["csam.train."+strings.TrimPrefix(k, "csam.")] = v
				}
			}
		}
		m.Metadata = slices.DeleteFunc(m.Metadata, func(kv graph.StringPair) bool { return kv.Key == "csam.epochs" })
		SetMetadata(m, moved)
	}
	layers, err := json.Marshal(res.Layers)
	if err != nil {
		return fmt.Errorf("csam: encoding layer sparsity: %w", err)
	}
	set := map[string]string{
		"csam.tool_version":      p.ToolVersion,
		"csam.method":            cfg.Method,
		"csam.target_sparsity":   strconv.FormatFloat(cfg.Sparsity, 'g', -1, 64),
		"csam.achieved_sparsity": strconv.FormatFloat(res.Sparsity, 'f', 6, 64),
		"csam.granularity":       "weight",
		"csam.seed":              strconv.FormatUint(cfg.Seed, 10),
		"csam.data":              p.Data,
		"csam.layers":            string(layers),
	}
	if cfg.Method == "csam" {
		set["csam.variant"] = cfg.Variant
		set["csam.rho"] = strconv.FormatFloat(cfg.Rho, 'g', -1, 64)
		set["csam.rho_norm"] = cfg.RhoNorm
		if cfg.InitPercentile > 0 {
			set["csam.init_percentile"] = strconv.FormatFloat(cfg.InitPercentile, 'g', -1, 64)
		}
	}
	if p.Command != "" {
		set["csam.command"] = p.Command
	}
	SetMetadata(m, set)
	return nil
}

// SetMetadata sets metadata_props entries, replacing existing keys and
// appending new ones in sorted order so the output is reproducible.
func SetMetadata(m *graph.Model, kv map[string]string) {
	done := map[string]bool{}
	for i := range m.Metadata {
		if v, ok := kv[m.Metadata[i].Key]; ok {
			m.Metadata[i].Value = v
			done[m.Metadata[i].Key] = true
		}
	}
	keys := make([]string, 0, len(kv))
	for k := range kv {
		if !done[k] {
			keys = append(keys, k)
		}
	}
	sortStrings(keys)
	for _, k := range keys {
		m.Metadata = append(m.Metadata, graph.StringPair{Key: k, Value: kv[k]})
	}
}
