package finetune

import (
	"bytes"
	"encoding/gob"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Checkpoint is the resumable state of a phase: where it stopped and every
// tensor it needs (weights, running statistics, optimizer buffers, masks).
type Checkpoint struct {
	Version    int
	Phase      string
	Epoch      int  // epoch to run next
	Step       int  // batches of Epoch already done
	Done       bool // the phase finished
	Meta       map[string]string
	Tensors    map[string][]float32
	EpochSoFar EpochStats
}

const checkpointVersion = 1

var errNoCheckpoint = errors.New("finetune: no checkpoint")

// WriteCheckpoint writes ck to path atomically (a temp file in the same
// folder, synced, then renamed), so a crash never leaves a torn file.
func WriteCheckpoint(path string, ck *Checkpoint) error {
	ck.Version = checkpointVersion
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(ck); err != nil {
		return fmt.Errorf("finetune: encoding checkpoint %s: %w", path, err)
	}
	return writeAtomic(path, buf.Bytes())
}

// ReadCheckpoint reads a checkpoint written by WriteCheckpoint.
func ReadCheckpoint(path string) (*Checkpoint, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errNoCheckpoint
	}
	if err != nil {
		return nil, fmt.Errorf("finetune: reading checkpoint: %w", err)
	}
	var ck Checkpoint
	if err := gob.NewDecoder(bytes.NewReader(b)).Decode(&ck); err != nil {
		return nil, fmt.Errorf("finetune: checkpoint %s is damaged (%v); delete it to start over", path, err)
	}
	if ck.Version != checkpointVersion {
		return nil, fmt.Errorf("finetune: checkpoint %s has format version %d, want %d; delete it to start over", path, ck.Version, checkpointVersion)
	}
	return &ck, nil
}

func writeAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("finetune: writing %s: %w", path, err)
	}
	tmp := f.Name()
	_, werr := f.Write(data)
	if werr == nil {
		werr = f.Sync()
	}
	cerr := f.Close()
	if werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp, path)
	}
	if werr != nil {
		os.Remove(tmp)
		return fmt.Errorf("finetune: writing %s: %w", path, werr)
	}
	return nil
}
