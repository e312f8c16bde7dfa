package dataset

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
)

// Dataset is a labelled set of images held in memory.
//
// Pixels are stored as uint8, image after image, each image channel-major
// (CHW, RGB order for colour images): image i occupies
// Pixels[i*C*H*W : (i+1)*C*H*W]. A stored value v stands for the float
// pixel v/255 in [0,1]; Batches and Image convert on the fly, so a
// 50,000-image CIFAR-10 set takes 150 MB instead of 600 MB.
//
// A Dataset is not modified by any method of this package after it has
// been built, so it may be shared by goroutines that only read it.
type Dataset struct {
	// Name describes where the images came from (a spec, a file), for
	// messages and reports.
	Name string
	// Title names the data set for reports ("CIFAR-10 (JPEG q75 copy)
	// test, 32x32"), when the loader knows it.
	Title string
	// C, H, W are the shape of every image.
	C, H, W int
	// Pixels holds the images, see the type comment.
	Pixels []uint8
	// Labels[i] is image i's class, an index into Classes.
	Labels []int
	// Classes are the class names in label order.
	Classes []string
	// Sources[i], when not nil, says where image i came from (a path
	// inside a folder or tarball, or "file.bin#record"), for messages.
	Sources []string
	// Skipped lists the files that could not be decoded and were skipped
	// (only when loading with SkipBad).
	Skipped []string
}

// Len is the number of images.
func (d *Dataset) Len() int { return len(d.Labels) }

// Stride is the number of values of one image, C*H*W.
func (d *Dataset) Stride() int { return d.C * d.H * d.W }

// Shape is the shape of one image, [C, H, W].
func (d *Dataset) Shape() []int { return []int{d.C, d.H, d.W} }

// NumClasses is len(d.Classes).
func (d *Dataset) NumClasses() int { return len(d.Classes) }

// Raw returns image i's stored bytes (CHW); the slice aliases d.Pixels.
func (d *Dataset) Raw(i int) []uint8 {
	s := d.Stride()
	return d.Pixels[i*s : (i+1)*s : (i+1)*s]
}

// Image writes image i as float32 CHW values in [0,1] into dst, which must
// hold Stride() values, and returns dst[:Stride()]. A nil dst is allocated.
func (d *Dataset) Image(dst []float32, i int) []float32 {
	s := d.Stride()
	if dst == nil {
		dst = make([]float32, s)
	}
	dst = dst[:s]
	for k, v := range d.Raw(i) {
		dst[k] = u8ToF32[v]
	}
	return dst
}

// Source describes where image i came from: Sources[i] when recorded,
// else "<Name>#<i>".
func (d *Dataset) Source(i int) string {
	if d.Sources != nil {
		return d.Sources[i]
	}
	return fmt.Sprintf("%s#%d", d.Name, i)
}

// u8ToF32[v] is v/255, the float pixel a stored byte stands for.
var u8ToF32 = func() (t [256]float32) {
	for i := range t {
		t[i] = float32(i) / 255
	}
	return
}()

// Counts returns the number of images of each class.
func (d *Dataset) Counts() []int {
	c := make([]int, len(d.Classes))
	for _, l := range d.Labels {
		if l >= 0 && l < len(c) {
			c[l]++
		}
	}
	return c
}

// Validate checks that the fields agree with each other: positive shape,
// len(Pixels) = Len()*Stride(), every label in [0, NumClasses()), Sources
// nil or one per image.
func (d *Dataset) Validate() error {
	if d.C <= 0 || d.H <= 0 || d.W <= 0 {
		return fmt.Errorf("dataset: %s: image shape %dx%dx%d is not positive", d.Name, d.C, d.H, d.W)
	}
	if len(d.Pixels) != d.Len()*d.Stride() {
		return fmt.Errorf("dataset: %s: %d pixel bytes for %d images of %dx%dx%d, want %d",
			d.Name, len(d.Pixels), d.Len(), d.C, d.H, d.W, d.Len()*d.Stride())
	}
	if len(d.Classes) == 0 {
		return fmt.Errorf("dataset: %s: no class names", d.Name)
	}
	for i, l := range d.Labels {
		if l < 0 || l >= len(d.Classes) {
			return fmt.Errorf("dataset: %s: image %d (%s) has label %d, want 0..%d", d.Name, i, d.Source(i), l, len(d.Classes)-1)
		}
	}
	if d.Sources != nil && len(d.Sources) != d.Len() {
		return fmt.Errorf("dataset: %s: %d sources for %d images", d.Name, len(d.Sources), d.Len())
	}
	return nil
}

// Fits checks that d can feed a model whose input is [N, C, H, W] (shape
// holds C, H, W, or N, C, H, W with any N) and that has numClasses outputs.
// The errors say what differs and how to fix it.
func (d *Dataset) Fits(shape []int, numClasses int) error {
	if len(shape) == 4 {
		shape = shape[1:]
	}
	if len(shape) != 3 {
		return fmt.Errorf("dataset: %s: model input shape %v is not [N,C,H,W]", d.Name, shape)
	}
	var errs []string
	if shape[0] > 0 && shape[0] != d.C {
		errs = append(errs, fmt.Sprintf("images have %d channel(s), the model wants %d", d.C, shape[0]))
	}
	if (shape[1] > 0 && shape[1] != d.H) || (shape[2] > 0 && shape[2] != d.W) {
		hint := ""
		if shape[1] == shape[2] && shape[1] >= 1 && shape[1] <= 4096 {
			hint = fmt.Sprintf(" (add @%d to the data spec to resize)", shape[1])
		}
		errs = append(errs, fmt.Sprintf("images are %dx%d, the model wants %dx%d%s", d.H, d.W, shape[1], shape[2], hint))
	}
	if numClasses > 0 {
		if len(d.Classes) > numClasses {
			errs = append(errs, fmt.Sprintf("%d classes, the model has %d outputs", len(d.Classes), numClasses))
		} else {
			for i, l := range d.Labels {
				if l >= numClasses {
					errs = append(errs, fmt.Sprintf("image %d (%s) has label %d, the model has %d outputs", i, d.Source(i), l, numClasses))
					break
				}
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("dataset: %s does not fit the model: %s", d.Name, strings.Join(errs, "; "))
	}
	return nil
}

// ClassNote is a note for a model with more outputs than d has classes
// (an ImageNet model given a 10-class data set, say): label l is scored as
// the model's output l, which is right only when the model was trained on
// these classes in this order. Empty when the counts match or numClasses
// is unknown (0); more classes than outputs is an error of Fits.
func (d *Dataset) ClassNote(numClasses int) string {
	k := len(d.Classes)
	if numClasses <= 0 || k == 0 || k >= numClasses {
		return ""
	}
	first := fmt.Sprintf("%q", d.Classes[0])
	if k > 1 {
		first += fmt.Sprintf(" is output 0, … %q output %d", d.Classes[k-1], k-1)
	} else {
		first += " is output 0"
	}
	unused := fmt.Sprintf("outputs %d–%d are", k, numClasses-1)
	if k == numClasses-1 {
		unused = fmt.Sprintf("output %d is", k)
	}
	classes := "classes"
	if k == 1 {
		classes = "class"
	}
	return fmt.Sprintf("the data has %d %s and the model %d outputs: each label is scored as the output of the same index (%s), and %s never the answer; "+
		"this is right only if the model was trained on these classes in this order (a model trained on other classes needs a new classifier head first)",
		k, classes, numClasses, first, unused)
}

// SameClasses checks that other (say, the test split) uses the same classes
// in the same order as d (the training split), naming the first difference.
func (d *Dataset) SameClasses(other *Dataset) error {
	if slices.Equal(d.Classes, other.Classes) {
		return nil
	}
	for _, c := range d.Classes {
		if !slices.Contains(other.Classes, c) {
			return fmt.Errorf("dataset: class %q is in %s but missing from %s", c, d.Name, other.Name)
		}
	}
	for _, c := range other.Classes {
		if !slices.Contains(d.Classes, c) {
			return fmt.Errorf("dataset: class %q is in %s but missing from %s", c, other.Name, d.Name)
		}
	}
	return fmt.Errorf("dataset: %s and %s list their classes in different orders (%v vs %v)", d.Name, other.Name, d.Classes, other.Classes)
}

// Select returns a new Dataset holding the images idx (in that order),
// copied. It panics if an index is out of range (a programmer error).
func (d *Dataset) Select(idx []int) *Dataset {
	s := d.Stride()
	out := &Dataset{
		Name: d.Name, Title: d.Title, C: d.C, H: d.H, W: d.W,
		Pixels:  make([]uint8, len(idx)*s),
		Labels:  make([]int, len(idx)),
		Classes: slices.Clone(d.Classes),
		Skipped: slices.Clone(d.Skipped),
	}
	if d.Sources != nil {
		out.Sources = make([]string, len(idx))
	}
	for k, i := range idx {
		copy(out.Pixels[k*s:(k+1)*s], d.Raw(i))
		out.Labels[k] = d.Labels[i]
		if d.Sources != nil {
			out.Sources[k] = d.Sources[i]
		}
	}
	return out
}

// Head returns the first n images (all of them if n ≥ Len()), copied.
func (d *Dataset) Head(n int) *Dataset {
	n = max(0, min(n, d.Len()))
	out := d.Select(seq(n))
	out.Name = fmt.Sprintf("%s[:%d]", d.Name, n)
	return out
}

// Stratified returns about n images drawn without replacement so that each
// class keeps its share of the set (largest-remainder rounding, so the
// total is exactly min(n, Len())). The draw is determined by src; the
// chosen images keep their original order.
func (d *Dataset) Stratified(n int, src rand.Source) *Dataset {
	n = max(0, min(n, d.Len()))
	if n == 0 {
		return d.Head(0)
	}
	byClass := make([][]int, len(d.Classes))
	for i, l := range d.Labels {
		byClass[l] = append(byClass[l], i)
	}
	// Largest-remainder apportionment of n over the classes.
	quota := make([]int, len(byClass))
	type rem struct {
		class int
		frac  float64
	}
	var rems []rem
	total := 0
	for c, ids := range byClass {
		exact := float64(n) * float64(len(ids)) / float64(d.Len())
		quota[c] = int(exact)
		total += quota[c]
		rems = append(rems, rem{c, exact - float64(quota[c])})
	}
	slices.SortStableFunc(rems, func(a, b rem) int {
		switch {
		case a.frac > b.frac:
			return -1
		case a.frac < b.frac:
			return 1
		}
		return a.class - b.class
	})
	for k := 0; total < n; k++ {
		c := rems[k%len(rems)].class
		if quota[c] < len(byClass[c]) {
			quota[c]++
			total++
		}
	}
	r := rand.New(src)
	var idx []int
	for c, ids := range byClass {
		perm := r.Perm(len(ids))
		for _, p := range perm[:quota[c]] {
			idx = append(idx, ids[p])
		}
	}
	slices.Sort(idx)
	out := d.Select(idx)
	out.Name = fmt.Sprintf("%s[stratified %d]", d.Name, n)
	return out
}

// Subset returns n images: the first n when src is nil, else a stratified
// draw by src (see Stratified).
func (d *Dataset) Subset(n int, src rand.Source) *Dataset {
	if src == nil {
		return d.Head(n)
	}
	return d.Stratified(n, src)
}

// Shard returns the images i, i+n, i+2n, … (shard i of n, 0 ≤ i < n), for
// spreading work such as certification over n processes.
func (d *Dataset) Shard(i, n int) (*Dataset, error) {
	if n <= 0 || i < 0 || i >= n {
		return nil, fmt.Errorf("dataset: shard %d/%d: want 0 ≤ i < n", i, n)
	}
	var idx []int
	for k := i; k < d.Len(); k += n {
		idx = append(idx, k)
	}
	out := d.Select(idx)
	out.Name = fmt.Sprintf("%s[shard %d/%d]", d.Name, i, n)
	return out, nil
}

// SplitStratified splits d into two disjoint parts, the second holding
// about frac of each class (for a validation hold-out), drawn by src.
func (d *Dataset) SplitStratified(frac float64, src rand.Source) (rest, held *Dataset, err error) {
	if frac <= 0 || frac >= 1 {
		return nil, nil, fmt.Errorf("dataset: split fraction %g: want 0 < frac < 1", frac)
	}
	r := rand.New(src)
	byClass := make([][]int, len(d.Classes))
	for i, l := range d.Labels {
		byClass[l] = append(byClass[l], i)
	}
	var a, b []int
	for _, ids := range byClass {
		k := int(float64(len(ids))*frac + 0.5)
		perm := r.Perm(len(ids))
		for j, p := range perm {
			if j < k {
				b = append(b, ids[p])
			} else {
				a = append(a, ids[p])
			}
		}
	}
	slices.Sort(a)
	slices.Sort(b)
	rest, held = d.Select(a), d.Select(b)
	rest.Name = d.Name + "[train part]"
	held.Name = d.Name + "[held-out part]"
	return rest, held, nil
}

func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

// Resize returns a copy of d with every image resized to h×w by resizeCHW
// (centre crop to the target aspect ratio, then area averaging to shrink
// or bilinear interpolation to grow).
func (d *Dataset) Resize(h, w int) *Dataset {
	out := *d
	out.H, out.W = h, w
	out.Pixels = make([]uint8, d.Len()*d.C*h*w)
	s := out.Stride()
	for i := range d.Len() {
		resizeCHW(out.Pixels[i*s:(i+1)*s], h, w, d.Raw(i), d.C, d.H, d.W)
	}
	return &out
}

// WithChannels returns d with c channels: itself when it has them already,
// gray replicated to RGB for c=3, or RGB reduced to luma (the weights of
// color.GrayModel) for c=1.
func (d *Dataset) WithChannels(c int) (*Dataset, error) {
	switch {
	case c == d.C:
		return d, nil
	case c == 3 && d.C == 1, c == 1 && d.C == 3:
	default:
		return nil, fmt.Errorf("dataset: %s: cannot convert %d channel(s) to %d", d.Name, d.C, c)
	}
	out := *d
	out.C = c
	out.Pixels = make([]uint8, d.Len()*c*d.H*d.W)
	plane := d.H * d.W
	for i := range d.Len() {
		src, dst := d.Raw(i), out.Pixels[i*c*plane:(i+1)*c*plane]
		if c == 3 {
			copy(dst[:plane], src)
			copy(dst[plane:2*plane], src)
			copy(dst[2*plane:], src)
			continue
		}
		for p := range plane {
			dst[p] = uint8((19595*uint32(src[p]) + 38470*uint32(src[plane+p]) + 7471*uint32(src[2*plane+p]) + 1<<15) >> 16)
		}
	}
	return &out, nil
}

// String summarizes d: name, count, shape and classes.
func (d *Dataset) String() string {
	return fmt.Sprintf("%s: %d images of %dx%dx%d, %d classes", d.Name, d.Len(), d.C, d.H, d.W, len(d.Classes))
}
