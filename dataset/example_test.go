package dataset_test

import (
	"context"
	"fmt"

	"github.com/csam-onnx/csam-onnx/dataset"
)

// One epoch of shuffled, augmented training batches, resumable at any
// step: the batches depend only on the seed, the epoch and the step.
func ExampleDataset_Batches() {
	d := &dataset.Dataset{
		Name: "tiny", C: 1, H: 2, W: 2,
		Pixels:  []uint8{0, 51, 102, 153, 255, 255, 255, 255, 10, 20, 30, 40},
		Labels:  []int{0, 1, 0},
		Classes: []string{"dark", "light"},
	}
	opts := dataset.BatchOptions{Shuffle: true, Seed: 1, Epoch: 0, Augment: &dataset.Augment{FlipH: true}, Reuse: true}
	for b, err := range d.Batches(context.Background(), 2, opts) {
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(b.Step, b.Images.Shape, b.Index, b.Labels)
	}
	// Output:
	// 0 [2 1 2 2] [2 0] [0 0]
	// 1 [1 1 2 2] [1] [1]
}
