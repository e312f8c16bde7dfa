package dataset

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// CIFAR10CCorruptions are the 19 corruption files of the released
// CIFAR-10-C (Hendrycks & Dietterich, 2019): the 15 of the benchmark
// followed by the 4 extra ones.
var CIFAR10CCorruptions = []string{
	"gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur",
	"motion_blur", "zoom_blur", "snow", "frost", "fog", "brightness", "contrast",
	"elastic_transform", "pixelate", "jpeg_compression",
	"speckle_noise", "gaussian_blur", "spatter", "saturate",
}

// npyHeader is what ReadNPY needs from a .npy header.
type npyHeader struct {
	descr     string // "|u1", "<i8", …
	shape     []int
	dataStart int64
	itemSize  int
}

// readNPYHeader parses the header of a NumPy .npy file (format versions 1
// to 3): magic, version, header length, then a Python dict literal with
// 'descr', 'fortran_order' and 'shape'.
func readNPYHeader(r io.Reader, name string) (*npyHeader, error) {
	var pre [8]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil {
		return nil, fmt.Errorf("dataset: %s: reading the .npy preamble: %w", name, err)
	}
	if string(pre[:6]) != "\x93NUMPY" {
		return nil, fmt.Errorf("dataset: %s: not a .npy file (bad magic)", name)
	}
	var hlen int
	start := int64(10)
	switch pre[6] {
	case 1:
		var b [2]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return nil, fmt.Errorf("dataset: %s: reading the .npy header length: %w", name, err)
		}
		hlen = int(binary.LittleEndian.Uint16(b[:]))
	case 2, 3:
		var b [4]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return nil, fmt.Errorf("dataset: %s: reading the .npy header length: %w", name, err)
		}
		hlen = int(binary.LittleEndian.Uint32(b[:]))
		start = 12
	default:
		return nil, fmt.Errorf("dataset: %s: .npy format version %d.%d is not supported (want 1, 2 or 3)", name, pre[6], pre[7])
	}
	if hlen > 1<<20 {
		return nil, fmt.Errorf("dataset: %s: .npy header of %d bytes is implausible", name, hlen)
	}
	hb := make([]byte, hlen)
	if _, err := io.ReadFull(r, hb); err != nil {
		return nil, fmt.Errorf("dataset: %s: reading the .npy header: %w", name, err)
	}
	h := string(hb)
	field := func(key string) (string, error) {
		i := strings.Index(h, "'"+key+"'")
		if i < 0 {
			return "", fmt.Errorf("dataset: %s: .npy header has no %q: %s", name, key, strings.TrimSpace(h))
		}
		v := strings.TrimLeft(h[i+len(key)+2:], " :")
		return v, nil
	}
	h0 := &npyHeader{dataStart: start + int64(hlen)}
	v, err := field("descr")
	if err != nil {
		return nil, err
	}
	if len(v) < 2 || v[0] != '\'' || strings.IndexByte(v[1:], '\'') < 0 {
		return nil, fmt.Errorf("dataset: %s: cannot read the .npy descr in %s", name, h)
	}
	h0.descr = v[1 : 1+strings.IndexByte(v[1:], '\'')]
	switch h0.descr {
	case "|u1", "<u1", "|i1", "|b1":
		h0.itemSize = 1
	case "<i4", "<u4":
		h0.itemSize = 4
	case "<i8", "<u8":
		h0.itemSize = 8
	default:
		return nil, fmt.Errorf("dataset: %s: .npy element type %q is not supported (want uint8 images and integer labels)", name, h0.descr)
	}
	if v, err = field("fortran_order"); err != nil {
		return nil, err
	}
	if strings.HasPrefix(v, "True") {
		return nil, fmt.Errorf("dataset: %s: Fortran-order .npy arrays are not supported; save with C order", name)
	}
	if v, err = field("shape"); err != nil {
		return nil, err
	}
	end := strings.IndexByte(v, ')')
	if !strings.HasPrefix(v, "(") || end < 0 {
		return nil, fmt.Errorf("dataset: %s: cannot read the .npy shape in %s", name, h)
	}
	for _, s := range strings.Split(v[1:end], ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("dataset: %s: bad .npy dimension %q", name, s)
		}
		h0.shape = append(h0.shape, n)
	}
	return h0, nil
}

// readNPYRows reads rows [lo, hi) (along the first dimension) of a .npy
// file as int64 values (for labels) or raw bytes (for uint8 images): it
// returns the header and the values widened to int64 when asInt is set,
// else the bytes.
func readNPYRows(name string, lo, hi int, asInt bool) (*npyHeader, []byte, []int64, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("dataset: %w", err)
	}
	defer f.Close()
	h, err := readNPYHeader(bufio.NewReader(io.LimitReader(f, 1<<21)), name)
	if err != nil {
		return nil, nil, nil, err
	}
	if len(h.shape) == 0 {
		return nil, nil, nil, fmt.Errorf("dataset: %s: .npy array is a scalar", name)
	}
	if hi < 0 {
		hi = h.shape[0]
	}
	if lo < 0 || lo > hi || hi > h.shape[0] {
		return nil, nil, nil, fmt.Errorf("dataset: %s: rows %d..%d requested but the array has %d", name, lo, hi-1, h.shape[0])
	}
	row := int64(h.itemSize)
	for _, d := range h.shape[1:] {
		row *= int64(d)
	}
	if (hi-lo) > 0 && row*int64(hi-lo) > maxIDXBytes {
		return nil, nil, nil, fmt.Errorf("dataset: %s: %d rows of %d bytes is too much to load", name, hi-lo, row)
	}
	buf := make([]byte, row*int64(hi-lo))
	if n, err := f.ReadAt(buf, h.dataStart+row*int64(lo)); err != nil && !(err == io.EOF && n == len(buf)) {
		return nil, nil, nil, fmt.Errorf("dataset: %s: truncated: row %d is incomplete (%v)", name, lo+n/int(max(1, row)), err)
	}
	if !asInt {
		if h.itemSize != 1 {
			return nil, nil, nil, fmt.Errorf("dataset: %s: images must be uint8, the file holds %q", name, h.descr)
		}
		return h, buf, nil, nil
	}
	vals := make([]int64, 0, len(buf)/h.itemSize)
	for i := 0; i < len(buf); i += h.itemSize {
		switch h.itemSize {
		case 1:
			vals = append(vals, int64(buf[i]))
		case 4:
			if h.descr == "<i4" {
				vals = append(vals, int64(int32(binary.LittleEndian.Uint32(buf[i:]))))
			} else {
				vals = append(vals, int64(binary.LittleEndian.Uint32(buf[i:])))
			}
		case 8:
			vals = append(vals, int64(binary.LittleEndian.Uint64(buf[i:])))
		}
	}
	return h, nil, vals, nil
}

// ReadNPYImages reads rows [lo, hi) of a .npy file of uint8 images shaped
// (N, H, W, C) (or (N, H, W) for gray) and of a labels .npy file shaped
// (N,), into a Dataset (HWC is transposed to CHW). hi < 0 means N.
// classes names the labels (nil: CIFAR-10's).
func ReadNPYImages(imagesFile, labelsFile string, lo, hi int, classes []string) (*Dataset, error) {
	h, pix, _, err := readNPYRows(imagesFile, lo, hi, false)
	if err != nil {
		return nil, err
	}
	if hi < 0 {
		hi = h.shape[0]
	}
	var ih, iw, c int
	switch len(h.shape) {
	case 3:
		ih, iw, c = h.shape[1], h.shape[2], 1
	case 4:
		ih, iw, c = h.shape[1], h.shape[2], h.shape[3]
	default:
		return nil, fmt.Errorf("dataset: %s: image array shape %v, want (N,H,W,C) or (N,H,W)", imagesFile, h.shape)
	}
	if c != 1 && c != 3 {
		return nil, fmt.Errorf("dataset: %s: %d channels (shape %v), want 1 or 3", imagesFile, c, h.shape)
	}
	lh, _, labels, err := readNPYRows(labelsFile, lo, hi, true)
	if err != nil {
		return nil, err
	}
	if len(lh.shape) != 1 || lh.shape[0] != h.shape[0] {
		return nil, fmt.Errorf("dataset: %s: label array shape %v does not match %s's %d images", labelsFile, lh.shape, imagesFile, h.shape[0])
	}
	if classes == nil {
		classes = CIFAR10Classes
	}
	n := hi - lo
	d := &Dataset{
		Name: fmt.Sprintf("%s[%d:%d]", filepath.Base(imagesFile), lo, hi), C: c, H: ih, W: iw,
		Pixels: make([]uint8, len(pix)), Labels: make([]int, n), Classes: append([]string(nil), classes...),
	}
	plane := ih * iw
	stride := plane * c
	for i := range n {
		src, dst := pix[i*stride:(i+1)*stride], d.Pixels[i*stride:(i+1)*stride]
		for p := range plane {
			for k := range c {
				dst[k*plane+p] = src[p*c+k]
			}
		}
		l := labels[i]
		if l < 0 || l >= int64(len(classes)) {
			return nil, fmt.Errorf("dataset: %s: label %d of row %d is not below the %d classes", labelsFile, l, lo+i, len(classes))
		}
		d.Labels[i] = int(l)
	}
	return d, nil
}

// ReadCIFAR10C reads one corruption at one severity (1…5) of the released
// CIFAR-10-C: dir/<corruption>.npy holds 50,000 images, severity s being
// rows (s−1)·10000 … s·10000−1, with labels in dir/labels.npy.
func ReadCIFAR10C(dir, corruption string, severity int) (*Dataset, error) {
	if severity < 1 || severity > 5 {
		return nil, fmt.Errorf("dataset: CIFAR-10-C severity %d, want 1..5", severity)
	}
	const per = 10000
	d, err := ReadNPYImages(filepath.Join(dir, corruption+".npy"), filepath.Join(dir, "labels.npy"), (severity-1)*per, severity*per, CIFAR10Classes)
	if err != nil {
		return nil, err
	}
	d.Name = fmt.Sprintf("cifar10-c:%s#%s@%d", dir, corruption, severity)
	return d, nil
}
