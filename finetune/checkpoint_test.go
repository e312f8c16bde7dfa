package finetune

import (
	"bytes"
	"encoding/gob"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// sameBits reports whether a and b hold the same float32 bit patterns.
func sameBits(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

func testCheckpoint() *Checkpoint {
	rng := rand.New(rand.NewPCG(5, 5))
	big := make([]float32, 100_000)
	for i := range big {
		big[i] = float32(rng.NormFloat64())
	}
	return &Checkpoint{Phase: "train", Epoch: 3, Step: 17, Meta: map[string]string{"arch": "resnet18"},
		EpochSoFar: EpochStats{Epoch: 3, Loss: 1.25, Samples: 256, Extra: map[string]float64{"flips": 2}},
		Tensors: map[string][]float32{
			"special": {float32(math.NaN()), math.Float32frombits(0x7fc0_1234), float32(math.Copysign(0, -1)),
				float32(math.Inf(1)), float32(math.Inf(-1)), math.Float32frombits(1), math.MaxFloat32, 0},
			"big":   big,
			"empty": {},
		}}
}

// TestCheckpointRoundTrip: every tensor comes back bit for bit (NaN
// payloads, signed zeros, infinities, subnormals), with the rest of the
// record, and the file holds about 4 bytes a float.
func TestCheckpointRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.ckpt")
	want := testCheckpoint()
	if err := WriteCheckpoint(path, want); err != nil {
		t.Fatal(err)
	}
	got, err := ReadCheckpoint(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != 2 || got.Phase != "train" || got.Epoch != 3 || got.Step != 17 || got.Meta["arch"] != "resnet18" ||
		!reflect.DeepEqual(got.EpochSoFar, want.EpochSoFar) || len(got.Tensors) != 3 {
		t.Errorf("read back %+v", got)
	}
	for name, w := range want.Tensors {
		if !sameBits(got.Tensors[name], w) {
			t.Errorf("tensor %q: read back %v, want %v", name, got.Tensors[name][:min(8, len(got.Tensors[name]))], w[:min(8, len(w))])
		}
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if floats := 100_008; fi.Size() > int64(4.1*float64(floats)) {
		t.Errorf("checkpoint of %d floats takes %d bytes, want ≤ 4.1 a float", floats, fi.Size())
	}
}

// TestCheckpointReadsVersion1 reads a file in the first format (tensors
// as gob []float32), as the trainings running when version 2 came
// wrote them.
func TestCheckpointReadsVersion1(t *testing.T) {
	want := testCheckpoint()
	type v1 struct { // the first format's record
		Version    int
		Phase      string
		Epoch      int
		Step       int
		Done       bool
		Meta       map[string]string
		Tensors    map[string][]float32
		EpochSoFar EpochStats
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(v1{Version: 1, Phase: want.Phase, Epoch: want.Epoch, Step: want.Step, Meta: want.Meta,
		Tensors: want.Tensors, EpochSoFar: want.EpochSoFar}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "c.ckpt")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := ReadCheckpoint(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != 1 || got.Epoch != 3 || got.Step != 17 || !reflect.DeepEqual(got.EpochSoFar, want.EpochSoFar) {
		t.Errorf("read back %+v", got)
	}
	for name, w := range want.Tensors {
		if !sameBits(got.Tensors[name], w) {
			t.Errorf("tensor %q differs after reading the version-1 file", name)
		}
	}
	if buf.Len() < int(5*100_000) {
		t.Errorf("the version-1 file is %d bytes; the size comparison in the format's comment no longer holds", buf.Len())
	}
}

// TestCheckpointDamaged: a tensor whose byte count is not whole float32s
// and an unknown version are errors that name the file and say what to do.
func TestCheckpointDamaged(t *testing.T) {
	dir := t.TempDir()
	for name, f := range map[string]checkpointFile{
		"torn.ckpt":   {Version: 2, Raw: map[string][]byte{"conv1.weight": {1, 2, 3, 4, 5}}},
		"future.ckpt": {Version: 9},
	} {
		var buf bytes.Buffer
		if err := gob.NewEncoder(&buf).Encode(&f); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := ReadCheckpoint(path)
		if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "delete it to start over") {
			t.Errorf("%s: error %v, want one naming the file and what to do", name, err)
		}
	}
}
