package dataset

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/csam-onnx/csam-onnx/internal/testenv"
)

// BenchmarkDecodeCIFARJPEG reads and decodes a CIFAR-10 JPEG tarball
// (gunzip, untar, image/jpeg, CHW packing) with all workers; the test
// tarball (10,000 images) by default, the 50,000-image training tarball as
// the "train" sub-benchmark.
func BenchmarkDecodeCIFARJPEG(b *testing.B) {
	dir := testenv.SharedDir(b, "data", "cifar10")
	for _, split := range []string{"test", "train"} {
		b.Run(split, func(b *testing.B) {
			tarball := filepath.Join(dir, "cifar10-jpg-"+split+".tar.gz")
			n := 0
			for b.Loop() {
				d, err := LoadFolder(context.Background(), tarball, &FolderOptions{Split: split, ClassFile: filepath.Join(dir, "batches.meta.txt")})
				if err != nil {
					b.Fatal(err)
				}
				n += d.Len()
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "images/s")
		})
	}
}

// BenchmarkBatches assembles shuffled, augmented (pad-4 crop + flip)
// batches of 128 CIFAR-sized images, reusing buffers: the per-step data
// cost of training once the images are decoded.
func BenchmarkBatches(b *testing.B) {
	d := synth(10000, 3, 32, 32, 10, 1)
	for _, c := range []struct {
		name string
		aug  *Augment
	}{{"plain", nil}, {"augment", &Augment{Pad: 4, FlipH: true}}} {
		b.Run(c.name, func(b *testing.B) {
			n, epoch := 0, 0
			for b.Loop() {
				for batch, err := range d.Batches(context.Background(), 128, BatchOptions{Shuffle: true, Seed: 1, Epoch: epoch, Augment: c.aug, Reuse: true}) {
					if err != nil {
						b.Fatal(err)
					}
					n += len(batch.Labels)
				}
				epoch++
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "images/s")
		})
	}
}

// BenchmarkLoad loads whole data sets through their specs, as the command
// line does.
func BenchmarkLoad(b *testing.B) {
	cifar := testenv.SharedDir(b, "data", "cifar10")
	flowers := filepath.Join(testenv.SharedDir(b, "data", "flowers102"), "flowers102-96.tar.gz")
	for _, c := range []struct{ name, spec, split string }{
		{"cifar10-test", "cifar10:" + cifar, "test"},
		{"cifar10-train", "cifar10:" + cifar, "train"},
		{"test249", "cifar10:" + filepath.Join(cifar, "test_249.bin"), "test"},
		{"flowers102-train", "flowers102:" + flowers, "train"},
		{"flowers102-test", "flowers102:" + flowers, "test"},
		{"flowers102-train@64", "flowers102:" + flowers + "@64", "train"},
		{"fashion-mnist-train", "fashion-mnist", "train"},
		{"mnist-train", "mnist", "train"},
	} {
		b.Run(c.name, func(b *testing.B) {
			n := 0
			for b.Loop() {
				d, err := Load(context.Background(), c.spec, c.split)
				if err != nil {
					b.Fatal(err)
				}
				n += d.Len()
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "images/s")
		})
	}
}
