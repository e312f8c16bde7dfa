package dataset

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"strconv"
)

// FashionMNISTClasses are the Fashion-MNIST class names in label order.
var FashionMNISTClasses = []string{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"}

// MNISTClasses are the MNIST class names (the digits) in label order.
var MNISTClasses = []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}

// maxIDXBytes bounds the declared size of an IDX file's payload, checked
// before allocating (the largest real one, EMNIST, is ~700 MB).
const maxIDXBytes = 2 << 30

// ReadIDX reads an IDX image file (magic 0x00000803: uint8, dimensions N,
// rows, cols) and the matching IDX label file (0x00000801: uint8, N) into
// a one-channel Dataset. Either file may be gzip-compressed (detected by
// content, not by name). classes names the labels; nil means "0", "1", ….
func ReadIDX(imagesFile, labelsFile string, classes []string) (*Dataset, error) {
	dims, pix, err := readIDXFile(imagesFile, 3)
	if err != nil {
		return nil, err
	}
	ldims, labels, err := readIDXFile(labelsFile, 1)
	if err != nil {
		return nil, err
	}
	if ldims[0] != dims[0] {
		return nil, fmt.Errorf("dataset: %s holds %d images but %s holds %d labels", imagesFile, dims[0], labelsFile, ldims[0])
	}
	maxLabel := 0
	for _, l := range labels {
		maxLabel = max(maxLabel, int(l))
	}
	if classes == nil {
		for i := 0; i <= maxLabel; i++ {
			classes = append(classes, strconv.Itoa(i))
		}
	}
	d := &Dataset{Name: imagesFile, C: 1, H: dims[1], W: dims[2], Pixels: pix, Labels: make([]int, len(labels)), Classes: classes}
	for i, l := range labels {
		if int(l) >= len(classes) {
			return nil, fmt.Errorf("dataset: %s: label %d of item %d is not below the %d classes", labelsFile, l, i, len(classes))
		}
		d.Labels[i] = int(l)
	}
	return d, nil
}

// readIDXFile reads an unsigned-byte IDX file with rank dimensions.
func readIDXFile(name string, rank int) (dims []int, data []uint8, err error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, nil, fmt.Errorf("dataset: %w", err)
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<20)
	var r io.Reader = br
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, fmt.Errorf("dataset: %s: %w", name, err)
		}
		defer gz.Close()
		r = gz
	}
	var head [4]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return nil, nil, fmt.Errorf("dataset: %s: reading the IDX header: %w", name, err)
	}
	if head[0] != 0 || head[1] != 0 || head[2] != 0x08 {
		return nil, nil, fmt.Errorf("dataset: %s: not an unsigned-byte IDX file (magic % x, want 00 00 08 0%d)", name, head, rank)
	}
	if int(head[3]) != rank {
		return nil, nil, fmt.Errorf("dataset: %s: IDX file has %d dimensions, want %d (%s)", name, head[3], rank, map[int]string{1: "a label file", 3: "an image file"}[rank])
	}
	dims = make([]int, rank)
	total := int64(1)
	for i := range dims {
		var v uint32
		if err := binary.Read(r, binary.BigEndian, &v); err != nil {
			return nil, nil, fmt.Errorf("dataset: %s: reading dimension %d: %w", name, i, err)
		}
		dims[i] = int(v)
		total *= int64(v)
		if total > maxIDXBytes {
			return nil, nil, fmt.Errorf("dataset: %s: declared dimensions %v (of %d) already exceed %d bytes; the header is damaged", name, dims[:i+1], rank, int64(maxIDXBytes))
		}
	}
	data = make([]uint8, total)
	if n, err := io.ReadFull(r, data); err != nil {
		return nil, nil, fmt.Errorf("dataset: %s: truncated: %d of %d data bytes (item %d of %d): %v", name, n, total, int64(n)/max(1, total/int64(max(1, dims[0]))), dims[0], err)
	}
	return dims, data, nil
}
