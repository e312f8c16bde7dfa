package dataset

import (
	"context"
	"fmt"
	"iter"
	"math/rand/v2"
	"sync"

	"github.com/csam-onnx/csam-onnx/tensor"
)

// Batch is one mini-batch.
type Batch struct {
	// Images is a float32 tensor [B, C, H, W] of pixels in [0,1],
	// augmented when asked.
	Images *tensor.Tensor
	// Labels[b] is the class of image b.
	Labels []int
	// Index[b] is image b's index in the Dataset.
	Index []int
	// Epoch and Step locate the batch: it is batch Step (from 0) of epoch
	// Epoch.
	Epoch, Step int
}

// Augment describes the on-the-fly augmentation of training images. Each
// image of a batch gets its own draw.
type Augment struct {
	// Pad, when > 0, enables random crops with zero padding: the image is
	// padded with Pad zero pixels on every side and an H×W window is cut
	// at a uniformly random offset in [0, 2·Pad]² (the CIFAR recipe is
	// Pad=4).
	Pad int
	// FlipH flips the image left–right with probability 1/2.
	FlipH bool
}

// BatchOptions configure Batches. The zero value gives the images in
// order, without augmentation, the last batch possibly short.
type BatchOptions struct {
	// Shuffle visits the images in a random order per epoch: epoch e uses
	// the permutation rand.New(rand.NewPCG(Seed, e)).Perm(Len()).
	Shuffle bool
	// Seed determines the order (with Shuffle) and the augmentation; the
	// same Seed, Epoch and batch size give the same batches.
	Seed uint64
	// Augment, when not nil, augments every image. The draws of batch s of
	// epoch e come from a PCG seeded by (Seed, e, s), so a batch does not
	// depend on which batches were produced before it.
	Augment *Augment
	// DropLast drops the last batch of an epoch when it is short.
	DropLast bool
	// Epoch selects the epoch (which permutation and augmentation draws),
	// and Step the first batch to produce: a run resumed at (Epoch, Step)
	// sees exactly the batches an uninterrupted run would.
	Epoch, Step int
	// Reuse recycles a few Batch buffers: a yielded Batch (its tensor and
	// slices) is valid only until the loop body returns, and the steady
	// state allocates nothing. Without Reuse every Batch is new and may be
	// kept.
	Reuse bool
	// Prefetch is how many batches are prepared ahead by a background
	// goroutine; 0 means 2.
	Prefetch int
}

// Steps is the number of batches of one epoch.
func (d *Dataset) Steps(batchSize int, dropLast bool) int {
	if batchSize <= 0 {
		return 0
	}
	if dropLast {
		return d.Len() / batchSize
	}
	return (d.Len() + batchSize - 1) / batchSize
}

// Order is the order in which epoch epoch visits the images: the identity
// without shuffling, else rand.New(rand.NewPCG(seed, epoch)).Perm(Len()).
func (d *Dataset) Order(shuffle bool, seed uint64, epoch int) []int {
	if !shuffle {
		return seq(d.Len())
	}
	return rand.New(rand.NewPCG(seed, uint64(epoch))).Perm(d.Len())
}

// augSalt separates the augmentation stream from the shuffling stream.
const augSalt = 0x9e3779b97f4a7c15

// Batches returns an iterator over the batches of one epoch (opts.Epoch),
// starting at batch opts.Step. A background goroutine prepares the next
// batches while the caller works; it stops when the loop ends (break,
// return, end of epoch) or ctx is cancelled, and no goroutine outlives the
// loop. Invalid arguments and a cancelled ctx are reported as one final
// (zero Batch, error) pair.
//
// A typical training loop:
//
//	for b, err := range d.Batches(ctx, 128, dataset.BatchOptions{Shuffle: true, Seed: seed, Epoch: e, Augment: &dataset.Augment{Pad: 4, FlipH: true}, Reuse: true}) {
//		if err != nil {
//			return err
//		}
//		copy(prog.Input(0).F32, b.Images.F32)
//		…
//	}
func (d *Dataset) Batches(ctx context.Context, batchSize int, opts BatchOptions) iter.Seq2[Batch, error] {
	return func(yield func(Batch, error) bool) {
		if err := d.Validate(); err != nil {
			yield(Batch{}, err)
			return
		}
		if batchSize <= 0 {
			yield(Batch{}, fmt.Errorf("dataset: %s: batch size %d, want > 0", d.Name, batchSize))
			return
		}
		if opts.Epoch < 0 || opts.Step < 0 {
			yield(Batch{}, fmt.Errorf("dataset: %s: start epoch %d step %d, want ≥ 0", d.Name, opts.Epoch, opts.Step))
			return
		}
		if a := opts.Augment; a != nil && (a.Pad < 0 || a.Pad > max(d.H, d.W)) {
			yield(Batch{}, fmt.Errorf("dataset: %s: crop padding %d, want 0..%d", d.Name, a.Pad, max(d.H, d.W)))
			return
		}
		steps := d.Steps(batchSize, opts.DropLast)
		if opts.Step > steps {
			yield(Batch{}, fmt.Errorf("dataset: %s: start step %d is past the epoch's %d batches", d.Name, opts.Step, steps))
			return
		}
		if err := ctx.Err(); err != nil {
			yield(Batch{}, err)
			return
		}
		prefetch := opts.Prefetch
		if prefetch <= 0 {
			prefetch = 2
		}
		order := d.Order(opts.Shuffle, opts.Seed, opts.Epoch)

		ctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		defer func() { cancel(); wg.Wait() }()

		ready := make(chan *Batch, prefetch)
		var free chan *Batch
		if opts.Reuse {
			// One held by the caller, prefetch queued, one being filled.
			free = make(chan *Batch, prefetch+2)
			for range prefetch + 2 {
				free <- d.newBatch(batchSize)
			}
		}
		wg.Go(func() {
			defer close(ready)
			pcg := rand.NewPCG(0, 0)
			for s := opts.Step; s < steps; s++ {
				var b *Batch
				if opts.Reuse {
					select {
					case b = <-free:
					case <-ctx.Done():
						return
					}
				} else {
					b = d.newBatch(min(batchSize, d.Len()-s*batchSize))
				}
				lo := s * batchSize
				hi := min(lo+batchSize, d.Len())
				pcg.Seed(opts.Seed^augSalt, uint64(opts.Epoch)<<32|uint64(s))
				d.fill(b, order[lo:hi], opts.Augment, pcg)
				b.Epoch, b.Step = opts.Epoch, s
				select {
				case ready <- b:
				case <-ctx.Done():
					return
				}
			}
		})
		for b := range ready {
			if ctx.Err() != nil {
				break
			}
			if !yield(*b, nil) {
				return
			}
			if opts.Reuse {
				free <- b // never blocks: the channel holds every buffer
			}
		}
		if err := ctx.Err(); err != nil {
			yield(Batch{}, err)
		}
	}
}

// newBatch allocates a batch of capacity n.
func (d *Dataset) newBatch(n int) *Batch {
	return &Batch{
		Images: tensor.New(n, d.C, d.H, d.W),
		Labels: make([]int, n),
		Index:  make([]int, n),
	}
}

// fill writes the images idx into b (resized to len(idx)), augmented with
// draws from src when aug is not nil.
func (d *Dataset) fill(b *Batch, idx []int, aug *Augment, src *rand.PCG) {
	n, s := len(idx), d.Stride()
	b.Images.Shape[0] = n
	b.Images.F32 = b.Images.F32[:n*s]
	b.Labels = b.Labels[:n]
	b.Index = b.Index[:n]
	for k, i := range idx {
		b.Index[k] = i
		b.Labels[k] = d.Labels[i]
		dst := b.Images.F32[k*s : (k+1)*s]
		if aug == nil || (aug.Pad == 0 && !aug.FlipH) {
			d.Image(dst, i)
			continue
		}
		var dx, dy int
		flip := false
		if aug.Pad > 0 {
			span := uint64(2*aug.Pad + 1)
			dx = int(src.Uint64()%span) - aug.Pad
			dy = int(src.Uint64()%span) - aug.Pad
		}
		if aug.FlipH {
			flip = src.Uint64()&1 == 1
		}
		cropFlip(dst, d.Raw(i), d.C, d.H, d.W, dx, dy, flip)
	}
}

// cropFlip writes into dst (float32 CHW) the image src (uint8 CHW) shifted
// so that dst(y, x) = src(y+dy, x+dx), zero outside src, then mirrored
// left–right when flip is set. This is the crop at offset (Pad+dx, Pad+dy)
// of src padded by Pad zeros on each side.
func cropFlip(dst []float32, src []uint8, c, h, w, dx, dy int, flip bool) {
	for k := range c {
		plane := src[k*h*w : (k+1)*h*w]
		out := dst[k*h*w : (k+1)*h*w]
		for y := range h {
			row := out[y*w : (y+1)*w]
			sy := y + dy
			if sy < 0 || sy >= h {
				clear(row)
				continue
			}
			srow := plane[sy*w : (sy+1)*w]
			// Valid x range: 0 ≤ x+dx < w.
			x0, x1 := max(0, -dx), min(w, w-dx)
			if x0 >= x1 {
				clear(row)
				continue
			}
			if !flip {
				clear(row[:x0])
				for x := x0; x < x1; x++ {
					row[x] = u8ToF32[srow[x+dx]]
				}
				clear(row[x1:])
				continue
			}
			// Flipped: row[w-1-x] = shifted(x).
			clear(row[w-x0:])
			for x := x0; x < x1; x++ {
				row[w-1-x] = u8ToF32[srow[x+dx]]
			}
			clear(row[:w-x1])
		}
	}
}
