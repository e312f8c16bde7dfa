package onnxio

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/csam-onnx/csam-onnx/internal/testenv"
	"github.com/csam-onnx/csam-onnx/onnxio/internal/onnxpb"
)

// sharedModels lists every model.onnx of the conformance folders and the
// fixtures.
func sharedModels(t *testing.T) []string {
	t.Helper()
	var dirs []string
	for _, sub := range []string{"node", "node-v1.12.0", "pytorch-operator", "light-models"} {
		dirs = append(dirs, testenv.SharedDir(t, "onnx-conformance", sub))
	}
	dirs = append(dirs, testenv.SharedDir(t, "fixtures", "torch-1.13"))
	var models []string
	for _, d := range dirs {
		m, err := filepath.Glob(filepath.Join(d, "*", "model.onnx"))
		if err != nil {
			t.Fatal(err)
		}
		if len(m) == 0 {
			t.Fatalf("no model.onnx under %s", d)
		}
		models = append(models, m...)
	}
	sort.Strings(models)
	return models
}

func TestRoundTripShared(t *testing.T) {
	models := sharedModels(t)
	var nModels, nIdentical, nTensors, nOther int
	for _, path := range models {
		rel, _ := filepath.Rel(filepath.Dir(filepath.Dir(filepath.Dir(path))), path)
		orig, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var want onnxpb.Model
		if err := proto.Unmarshal(orig, &want); err != nil {
			t.Fatalf("%s: %v", rel, err)
		}
		// AnyVersion: two node-v1.12.0 tests use opset 1.
		m, err := ReadFileWith(path, &ReadOptions{AnyVersion: true})
		if err != nil {
			t.Errorf("ReadFile(%s): %v", rel, err)
			continue
		}
		b, err := Marshal(m)
		if err != nil {
			t.Errorf("Marshal(%s): %v", rel, err)
			continue
		}
		var got onnxpb.Model
		if err := proto.Unmarshal(b, &got); err != nil {
			t.Errorf("%s: re-reading the written bytes: %v", rel, err)
			continue
		}
		if !proto.Equal(&got, &want) {
			t.Errorf("%s: written model differs from the original", rel)
			continue
		}
		nModels++
		if bytes.Equal(b, orig) {
			nIdentical++ // same bytes: onnxruntime sees the very same model
		}

		pbs, _ := filepath.Glob(filepath.Join(filepath.Dir(path), "test_data_set_*", "*.pb"))
		for _, pb := range pbs {
			if !tensorFile(&want, filepath.Base(pb)) {
				nOther++ // a SequenceProto or OptionalProto, not a tensor
				continue
			}
			orig, err := os.ReadFile(pb)
			if err != nil {
				t.Fatal(err)
			}
			var want onnxpb.Tensor
			if err := proto.Unmarshal(orig, &want); err != nil {
				t.Errorf("%s: %v", pb, err)
				continue
			}
			tt, err := DecodeTensor(orig)
			if err != nil {
				t.Errorf("DecodeTensor(%s): %v", pb, err)
				continue
			}
			b, err := EncodeTensor(tt, want.GetName())
			if err != nil {
				t.Errorf("EncodeTensor(%s): %v", pb, err)
				continue
			}
			var got onnxpb.Tensor
			if err := proto.Unmarshal(b, &got); err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(&got, &want) {
				t.Errorf("%s: re-encoded tensor differs from the original", pb)
				continue
			}
			nTensors++
		}
	}
	summary := fmt.Sprintf("%d of %d models proto.Equal after read and write (%d byte-identical), %d tensor files proto.Equal (%d non-tensor .pb files skipped)", nModels, len(models), nIdentical, nTensors, nOther)
	t.Log(summary)
	if !testing.Verbose() {
		fmt.Println("onnxio round trip:", summary)
	}
}

// tensorFile reports whether the backend-test file name (input_K.pb or
// output_K.pb) belongs to a tensor-typed graph input or output of m.
func tensorFile(m *onnxpb.Model, name string) bool {
	kind, k, ok := strings.Cut(strings.TrimSuffix(name, ".pb"), "_")
	i, err := strconv.Atoi(k)
	if !ok || err != nil {
		return true
	}
	var vis []*onnxpb.ValueInfo
	if kind == "output" {
		vis = m.GetGraph().GetOutput()
	} else {
		inits := map[string]bool{}
		for _, t := range m.GetGraph().GetInitializer() {
			inits[t.GetName()] = true
		}
		for _, v := range m.GetGraph().GetInput() {
			if !inits[v.GetName()] {
				vis = append(vis, v)
			}
		}
	}
	if i >= len(vis) || vis[i].GetType() == nil {
		return true
	}
	return vis[i].GetType().GetTensorType() != nil
}
