package dataset

import (
	"context"
	"math/rand/v2"
	goruntime "runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

func newSrc(seed uint64) rand.Source { return rand.NewPCG(seed, seed) }

// synth makes n random c×h×w images with labels i%classes.
func synth(n, c, h, w, classes int, seed uint64) *Dataset {
	r := rand.New(newSrc(seed))
	d := &Dataset{Name: "synth", C: c, H: h, W: w, Pixels: make([]uint8, n*c*h*w), Labels: make([]int, n)}
	for i := range d.Pixels {
		d.Pixels[i] = uint8(r.IntN(256))
	}
	for i := range d.Labels {
		d.Labels[i] = i % classes
	}
	for k := range classes {
		d.Classes = append(d.Classes, string(rune('a'+k)))
	}
	return d
}

// collect runs the iterator to the end and returns deep copies of its
// batches.
func collect(t *testing.T, d *Dataset, bs int, opts BatchOptions) []Batch {
	t.Helper()
	var out []Batch
	for b, err := range d.Batches(context.Background(), bs, opts) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, Batch{Images: b.Images.Clone(), Labels: slices.Clone(b.Labels), Index: slices.Clone(b.Index), Epoch: b.Epoch, Step: b.Step})
	}
	return out
}

func sameBatches(a, b []Batch) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !slices.Equal(a[i].Images.F32, b[i].Images.F32) || !slices.Equal(a[i].Images.Shape, b[i].Images.Shape) ||
			!slices.Equal(a[i].Labels, b[i].Labels) || !slices.Equal(a[i].Index, b[i].Index) || a[i].Step != b[i].Step {
			return false
		}
	}
	return true
}

func TestBatchesInOrder(t *testing.T) {
	d := synth(10, 3, 4, 5, 3, 1)
	for _, reuse := range []bool{false, true} {
		bs := collect(t, d, 4, BatchOptions{Reuse: reuse})
		if len(bs) != 3 || len(bs[2].Labels) != 2 || bs[2].Images.Shape[0] != 2 {
			t.Fatalf("reuse=%v: %d batches, last of %d; want 3, last of 2", reuse, len(bs), len(bs[len(bs)-1].Labels))
		}
		for _, b := range bs {
			for k, i := range b.Index {
				if i != b.Step*4+k || b.Labels[k] != d.Labels[i] {
					t.Fatalf("batch %d item %d = image %d label %d, want image %d", b.Step, k, i, b.Labels[k], b.Step*4+k)
				}
				if got, want := b.Images.F32[k*60:(k+1)*60], d.Image(nil, i); !slices.Equal(got, want) {
					t.Fatalf("batch %d item %d: pixels differ from Image(%d)", b.Step, k, i)
				}
			}
		}
	}
	if got := collect(t, d, 4, BatchOptions{DropLast: true}); len(got) != 2 {
		t.Errorf("DropLast: %d batches, want 2", len(got))
	}
	// Pixel values are v/255.
	if got, want := d.Image(nil, 0)[0], float32(d.Pixels[0])/255; got != want {
		t.Errorf("Image(0)[0] = %v, want %v", got, want)
	}
}

func TestBatchesShuffleDeterministic(t *testing.T) {
	d := synth(50, 1, 2, 2, 5, 2)
	opts := BatchOptions{Shuffle: true, Seed: 7}
	a, b := collect(t, d, 8, opts), collect(t, d, 8, opts)
	if !sameBatches(a, b) {
		t.Error("same seed gave different batches")
	}
	var order []int
	for _, x := range a {
		order = append(order, x.Index...)
	}
	if slices.Equal(order, seq(50)) {
		t.Error("Shuffle left the order unchanged")
	}
	sorted := slices.Sorted(slices.Values(order))
	if !slices.Equal(sorted, seq(50)) {
		t.Errorf("an epoch visits %v, want every image once", sorted)
	}
	if want := d.Order(true, 7, 0); !slices.Equal(order, want) {
		t.Error("batches do not follow Order(true, 7, 0)")
	}
	for _, o := range []BatchOptions{{Shuffle: true, Seed: 8}, {Shuffle: true, Seed: 7, Epoch: 1}} {
		if sameBatches(a, collect(t, d, 8, o)) {
			t.Errorf("options %+v gave the same batches as seed 7 epoch 0", o)
		}
	}
}

// TestBatchesAugment checks that every augmented image is the claimed
// transformation of its source: some shift in [-pad, pad]² with zero fill,
// optionally mirrored; that both flips occur; and that the draws are
// reproducible.
func TestBatchesAugment(t *testing.T) {
	const pad = 2
	d := synth(64, 3, 6, 5, 4, 3)
	opts := BatchOptions{Shuffle: true, Seed: 11, Augment: &Augment{Pad: pad, FlipH: true}}
	bs := collect(t, d, 16, opts)
	if !sameBatches(bs, collect(t, d, 16, opts)) {
		t.Fatal("augmentation is not deterministic given the seed")
	}
	s := d.Stride()
	flips, shifts := map[bool]int{}, map[[2]int]int{}
	ref := make([]float32, s)
	for _, b := range bs {
		for k, i := range b.Index {
			got := b.Images.F32[k*s : (k+1)*s]
			found := false
			for dy := -pad; dy <= pad && !found; dy++ {
				for dx := -pad; dx <= pad && !found; dx++ {
					for _, flip := range []bool{false, true} {
						naiveCropFlip(ref, d.Raw(i), d.C, d.H, d.W, dx, dy, flip)
						if slices.Equal(ref, got) {
							found = true
							flips[flip]++
							shifts[[2]int{dx, dy}]++
							break
						}
					}
				}
			}
			if !found {
				t.Fatalf("step %d item %d (image %d) is no padded crop/flip of its source", b.Step, k, i)
			}
		}
	}
	if flips[true] == 0 || flips[false] == 0 {
		t.Errorf("flips %v: want both outcomes in 64 draws", flips)
	}
	if len(shifts) < 10 {
		t.Errorf("only %d distinct shifts in 64 draws, want most of the 25", len(shifts))
	}
	// Flip only: exactly the mirror image or the image itself.
	fl := collect(t, d, 64, BatchOptions{Augment: &Augment{FlipH: true}, Seed: 1})[0]
	for k := range 64 {
		naiveCropFlip(ref, d.Raw(k), d.C, d.H, d.W, 0, 0, true)
		if !slices.Equal(fl.Images.F32[k*s:(k+1)*s], ref) && !slices.Equal(fl.Images.F32[k*s:(k+1)*s], d.Image(nil, k)) {
			t.Fatalf("FlipH image %d is neither the image nor its mirror", k)
		}
	}
}

// naiveCropFlip is the definition: pad by zeros, cut at (pad+dx, pad+dy),
// mirror.
func naiveCropFlip(dst []float32, src []uint8, c, h, w, dx, dy int, flip bool) {
	for k := range c {
		for y := range h {
			for x := range w {
				sx := x
				if flip {
					sx = w - 1 - x
				}
				sx, sy := sx+dx, y+dy
				v := float32(0)
				if sx >= 0 && sx < w && sy >= 0 && sy < h {
					v = float32(src[k*h*w+sy*w+sx]) / 255
				}
				dst[k*h*w+y*w+x] = v
			}
		}
	}
}

func TestBatchesResume(t *testing.T) {
	d := synth(70, 3, 4, 4, 7, 4)
	for _, reuse := range []bool{false, true} {
		opts := BatchOptions{Shuffle: true, Seed: 99, Epoch: 3, Augment: &Augment{Pad: 1, FlipH: true}, Reuse: reuse}
		full := collect(t, d, 8, opts)
		opts.Step = 4
		resumed := collect(t, d, 8, opts)
		if !sameBatches(full[4:], resumed) {
			t.Errorf("reuse=%v: resuming at step 4 gave different batches", reuse)
		}
		if resumed[0].Step != 4 || resumed[0].Epoch != 3 {
			t.Errorf("first resumed batch is epoch %d step %d, want 3, 4", resumed[0].Epoch, resumed[0].Step)
		}
	}
}

// waitGoroutines waits up to a second for the goroutine count to fall to
// n (an exiting goroutine may take a moment to be accounted).
func waitGoroutines(n int) int {
	var g int
	for range 100 {
		if g = goruntime.NumGoroutine(); g <= n {
			return g
		}
		time.Sleep(10 * time.Millisecond)
	}
	return g
}

func TestBatchesNoLeak(t *testing.T) {
	d := synth(100, 3, 8, 8, 10, 5)
	before := goruntime.NumGoroutine()
	for _, reuse := range []bool{false, true} {
		n := 0
		for _, err := range d.Batches(context.Background(), 4, BatchOptions{Reuse: reuse, Prefetch: 3}) {
			if err != nil {
				t.Fatal(err)
			}
			if n++; n == 2 {
				break
			}
		}
		// The producer is gone as soon as the loop has ended: Batches
		// waits for it, so no waiting should be needed, but allow the
		// runtime a moment to account for it.
		if g := waitGoroutines(before); g > before {
			t.Errorf("reuse=%v: %d goroutines after an early break, %d before", reuse, g, before)
		}
	}
	// Cancellation ends the loop with ctx's error.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var errs []error
	n := 0
	for _, err := range d.Batches(ctx, 4, BatchOptions{Reuse: true}) {
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if n++; n == 3 {
			cancel()
		}
	}
	if len(errs) != 1 || errs[0] != context.Canceled || n > 3+3 {
		t.Errorf("after cancel: %d more batches, errors %v; want a prompt stop with context.Canceled", n-3, errs)
	}
	if g := waitGoroutines(before); g > before {
		t.Errorf("%d goroutines after cancel, %d before", g, before)
	}
}

func TestBatchesReuseAllocs(t *testing.T) {
	// With Reuse the allocations of an epoch do not grow with the number
	// of batches (a fixed set-up cost: buffers, channels, the goroutine).
	allocs := func(n int) float64 {
		d := synth(n, 3, 8, 8, 10, 6)
		return testing.AllocsPerRun(5, func() {
			for _, err := range d.Batches(context.Background(), 8, BatchOptions{Reuse: true, Augment: &Augment{Pad: 2, FlipH: true}}) {
				if err != nil {
					t.Fatal(err)
				}
			}
		})
	}
	small, large := allocs(80), allocs(800)
	// 90 more batches; tolerate 5 stray allocations (runtime scheduling
	// noise), far below one per batch.
	if large-small > 5 {
		t.Errorf("allocations: %v for 10 batches, %v for 100; want no growth per batch", small, large)
	}
}

func TestBatchesBadArgs(t *testing.T) {
	d := synth(10, 1, 2, 2, 2, 7)
	cases := []struct {
		bs   int
		opts BatchOptions
		want string
	}{
		{0, BatchOptions{}, "batch size 0"},
		{4, BatchOptions{Step: 4}, "start step 4"},
		{4, BatchOptions{Epoch: -1}, "start epoch -1"},
		{4, BatchOptions{Augment: &Augment{Pad: 9}}, "padding 9"},
	}
	broken := *d
	broken.Labels = append(slices.Clone(d.Labels), 0)
	var berr error
	for _, err := range broken.Batches(context.Background(), 4, BatchOptions{}) {
		berr = err
	}
	if berr == nil || !strings.Contains(berr.Error(), "pixel bytes") {
		t.Errorf("Batches on an inconsistent Dataset: %v, want an error", berr)
	}
	for _, c := range cases {
		n := 0
		for _, err := range d.Batches(context.Background(), c.bs, c.opts) {
			n++
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Batches(%d, %+v) error = %v, want %q", c.bs, c.opts, err, c.want)
			}
		}
		if n != 1 {
			t.Errorf("Batches(%d, %+v) yielded %d times, want once", c.bs, c.opts, n)
		}
	}
}

func TestSubsets(t *testing.T) {
	d := synth(100, 1, 2, 2, 4, 8) // 25 per class
	s := d.Stratified(40, newSrc(1))
	if got := s.Counts(); !slices.Equal(got, []int{10, 10, 10, 10}) {
		t.Errorf("Stratified(40) counts = %v, want 10 each", got)
	}
	if !slices.Equal(s.Pixels, d.Stratified(40, newSrc(1)).Pixels) {
		t.Error("Stratified is not deterministic given the source")
	}
	if s0 := d.Stratified(0, newSrc(1)); s0.Len() != 0 {
		t.Errorf("Stratified(0).Len() = %d", s0.Len())
	}
	if s2 := d.Stratified(41, newSrc(1)); s2.Len() != 41 {
		t.Errorf("Stratified(41).Len() = %d", s2.Len())
	}
	if h := d.Head(3); !slices.Equal(h.Labels, []int{0, 1, 2}) || !slices.Equal(h.Pixels, d.Pixels[:12]) {
		t.Errorf("Head(3) = %v", h.Labels)
	}
	total := 0
	for i := range 3 {
		sh, err := d.Shard(i, 3)
		if err != nil {
			t.Fatal(err)
		}
		total += sh.Len()
		if !slices.Equal(sh.Raw(1), d.Raw(i+3)) {
			t.Errorf("shard %d image 1 is not image %d", i, i+3)
		}
	}
	if total != 100 {
		t.Errorf("shards hold %d images, want 100", total)
	}
	if _, err := d.Shard(3, 3); err == nil {
		t.Error("Shard(3, 3) accepted")
	}
	rest, held, err := d.SplitStratified(0.2, newSrc(2))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(held.Counts(), []int{5, 5, 5, 5}) || rest.Len() != 80 {
		t.Errorf("SplitStratified(0.2): held %v, rest %d", held.Counts(), rest.Len())
	}
}

func TestFitsAndClasses(t *testing.T) {
	d := synth(10, 1, 28, 28, 10, 9)
	if err := d.Fits([]int{1, 1, 28, 28}, 10); err != nil {
		t.Errorf("Fits: %v", err)
	}
	for _, c := range []struct {
		shape   []int
		classes int
		want    string
	}{
		{[]int{-1, 3, 28, 28}, 10, "1 channel(s), the model wants 3"},
		{[]int{1, 32, 32}, 10, "@32"},
		{[]int{1, 1, 28, 28}, 5, "10 classes, the model has 5"},
	} {
		if err := d.Fits(c.shape, c.classes); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Fits(%v, %d) = %v, want %q", c.shape, c.classes, err, c.want)
		}
	}
	// @SIZE makes squares only: no hint for a 1×784 input.
	if err := d.Fits([]int{1, 1, 784}, 10); err == nil || !strings.HasSuffix(err.Error(), "the model wants 1x784") {
		t.Errorf("Fits([1 1 784]) = %v, want no @SIZE hint", err)
	}
	rgb, err := d.WithChannels(3)
	if err != nil || rgb.C != 3 || !slices.Equal(rgb.Raw(2)[784:1568], d.Raw(2)) {
		t.Errorf("WithChannels(3): %v, channel 1 differs from the gray image", err)
	}
	if back, err := rgb.WithChannels(1); err != nil || !slices.Equal(back.Pixels, d.Pixels) {
		t.Errorf("WithChannels(3).WithChannels(1) does not give the gray images back: %v", err)
	}
	if _, err := d.WithChannels(2); err == nil {
		t.Error("WithChannels(2) accepted")
	}
	o := synth(10, 1, 28, 28, 9, 9)
	o.Name = "other"
	if err := d.SameClasses(o); err == nil || !strings.Contains(err.Error(), `"j"`) {
		t.Errorf("SameClasses = %v, want class j missing", err)
	}
}

func TestResize(t *testing.T) {
	// Constant images stay constant at any size.
	src := slices.Repeat([]uint8{77}, 2*7*5)
	for _, sz := range [][2]int{{3, 3}, {14, 10}, {5, 9}, {7, 5}} {
		dst := make([]uint8, 2*sz[0]*sz[1])
		resizeCHW(dst, sz[0], sz[1], src, 2, 7, 5)
		for i, v := range dst {
			if v != 77 {
				t.Fatalf("resize 7x5 → %v: value %d at %d, want 77", sz, v, i)
			}
		}
	}
	// Halving averages 2×2 blocks.
	in := []uint8{0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120, 130, 140, 150}
	out := make([]uint8, 4)
	resizeCHW(out, 2, 2, in, 1, 4, 4)
	if want := []uint8{25, 45, 105, 125}; !slices.Equal(out, want) {
		t.Errorf("4x4 → 2x2 = %v, want %v", out, want)
	}
	// Centre crop: a 4 wide, 2 high image resized to 2×2 keeps the middle
	// columns.
	out = make([]uint8, 4)
	resizeCHW(out, 2, 2, []uint8{1, 2, 3, 4, 5, 6, 7, 8}, 1, 2, 4)
	if want := []uint8{2, 3, 6, 7}; !slices.Equal(out, want) {
		t.Errorf("centre crop = %v, want %v", out, want)
	}
	// Doubling a 2-pixel row bilinearly: centres at 0.25 and 0.75 of the
	// step between the two values, edges clamped.
	out = make([]uint8, 4)
	resizeCHW(out, 1, 4, []uint8{0, 200}, 1, 1, 2)
	if want := []uint8{0, 50, 150, 200}; !slices.Equal(out, want) {
		t.Errorf("1x2 → 1x4 = %v, want %v", out, want)
	}
}

func TestDeclaredSize(t *testing.T) {
	for _, c := range []struct {
		name string
		data []byte
	}{{"png", pngBytes(t, 13, 7, 0)}, {"jpeg", jpegBytes(t, 13, 7)}} {
		w, h, ok := declaredSize(c.data)
		if !ok || w != 13 || h != 7 {
			t.Errorf("%s: declaredSize = %d, %d, %v; want 13, 7, true", c.name, w, h, ok)
		}
	}
	// A header declaring an absurd size is refused before decoding.
	b := pngBytes(t, 2, 2, 0)
	b[16], b[20] = 0x7f, 0x7f
	if _, _, _, err := decodeImage(b, 3, 0, 0); err == nil || !strings.Contains(err.Error(), "declared size") {
		t.Errorf("decodeImage(huge PNG) error = %v", err)
	}
}

func TestParse(t *testing.T) {
	good := []struct {
		in   string
		want Spec
	}{
		{"cifar10:/data/c", Spec{Kind: "cifar10", Path: "/data/c"}},
		{"flowers102:/f/flowers102-96.tar.gz@64", Spec{Kind: "flowers102", Path: "/f/flowers102-96.tar.gz", Size: 64}},
		{"fashion-mnist", Spec{Kind: "fashion-mnist"}},
		{"mnist@32", Spec{Kind: "mnist", Size: 32}},
		{"folder:/a@b/c", Spec{Kind: "folder", Path: "/a@b/c"}},
		{"cifar10-c:/c10c#fog@3", Spec{Kind: "cifar10-c", Path: "/c10c", Corruption: "fog", Size: 3}},
	}
	for _, c := range good {
		got, err := Parse(c.in)
		if err != nil || got != c.want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
		if s := got.String(); s != c.in {
			t.Errorf("Parse(%q).String() = %q", c.in, s)
		}
	}
	bad := []struct{ in, want string }{
		{"imagenet:/x", `unknown kind "imagenet"`},
		{"cifar10", "needs a path"},
		{"folder:", "needs a path"},
		{"cifar10:/x@0", "size"},
		{"cifar10:/x@", "empty size"},
		{"cifar10-c:/x#fog", "severity"},
		{"cifar10-c:/x@2", "CORRUPTION"},
	}
	for _, c := range bad {
		_, err := Parse(c.in)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), c.in) {
			t.Errorf("Parse(%q) error = %v, want one naming the spec and %q", c.in, err, c.want)
		}
	}
	if _, err := Load(context.Background(), "fashion-mnist", "val"); err == nil || !strings.Contains(err.Error(), "train, test") {
		t.Errorf(`Load(fashion-mnist, "val") = %v, want the allowed splits`, err)
	}
}

// TestClassNote: a note only when the model has more outputs than the
// data has classes, naming both counts, the first and last class with
// their outputs and the outputs never used.
func TestClassNote(t *testing.T) {
	d := &Dataset{Name: "x", Classes: []string{"cat", "dog", "fox"}}
	for _, n := range []int{0, 2, 3} {
		if note := d.ClassNote(n); note != "" {
			t.Errorf("ClassNote(%d) = %q, want none", n, note)
		}
	}
	note := d.ClassNote(1000)
	for _, w := range []string{"3 classes and the model 1000 outputs", `"cat" is output 0, … "fox" output 2`, "outputs 3–999 are never the answer"} {
		if !strings.Contains(note, w) {
			t.Errorf("ClassNote(1000) = %q, want it to contain %q", note, w)
		}
	}
	if note := (&Dataset{Classes: []string{"one"}}).ClassNote(2); !strings.Contains(note, `1 class and the model 2 outputs`) || !strings.Contains(note, `"one" is output 0), and output 1 is never`) {
		t.Errorf("one class: %q", note)
	}
}
