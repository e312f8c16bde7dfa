package finetune_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/csam-onnx/csam-onnx/dataset"
	"github.com/csam-onnx/csam-onnx/finetune"
	"github.com/csam-onnx/csam-onnx/internal/testenv"
	"github.com/csam-onnx/csam-onnx/models"
)

// BenchmarkPipelineVsStep measures, in one run, how many images per second
// the CIFAR-10 data pipeline delivers (JPEG decode of the 10,000-image test
// tarball from ../shared/data/cifar10, then shuffled batches of 128 with
// pad-4 random crops and flips) and how many a training step consumes
// (finetune.Trainer.Step: forward, loss, backward, SGD with momentum, 2
// workers) on CIFAR ResNet-18 at width 1 (batch 64, the engine's reference
// setting) and width 0.25 (batch 128, the width the experiments train).
// ratio-w1 and ratio-w0.25 are pipeline ÷ step images/s: issue 4 asks for
// at least 10, so that training never waits for data. Decoding happens
// once per run in the tool (the decoded set stays in memory), so the
// figure is conservative: every epoch after the first only pays the
// batching part.
func BenchmarkPipelineVsStep(b *testing.B) {
	dir := testenv.SharedDir(b, "data", "cifar10")
	tarball := filepath.Join(dir, "cifar10-jpg-test.tar.gz")
	classes := filepath.Join(dir, "batches.meta.txt")
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		// Data pipeline: decode + augment every image once.
		t0 := time.Now()
		d, err := dataset.LoadFolder(ctx, tarball, &dataset.FolderOptions{Split: "test", ClassFile: classes, Workers: 2})
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for batch, err := range d.Batches(ctx, 128, dataset.BatchOptions{Shuffle: true, Seed: 1, Augment: &dataset.Augment{Pad: 4, FlipH: true}}) {
			if err != nil {
				b.Fatal(err)
			}
			n += len(batch.Labels)
		}
		pipe := float64(n) / time.Since(t0).Seconds()
		b.ReportMetric(pipe, "pipeline-images/s")

		for _, c := range []struct {
			name         string
			width        float64
			batch, steps int
		}{{"w1", 1, 64, 3}, {"w0.25", 0.25, 128, 8}} {
			step := trainStepRate(b, c.width, c.batch, c.steps, d)
			b.ReportMetric(step, "step-"+c.name+"-images/s")
			b.ReportMetric(pipe/step, "ratio-"+c.name)
		}
	}
}

// trainStepRate is the images/s of Trainer.Step on ResNet-18 of the given
// width, over steps steps after one warm-up step, on images of d.
func trainStepRate(b *testing.B, width float64, batch, steps int, d *dataset.Dataset) float64 {
	m, err := models.Build(models.Config{Arch: "resnet18", Width: width, Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	tr, err := finetune.NewTrainer(m, finetune.TrainConfig{Batch: batch, Schedule: finetune.Schedule{Kind: "constant", Base: 0.01, TotalSteps: 100}, Momentum: 0.9, Nesterov: true, WeightDecay: 5e-4, Seed: 1, Workers: 2})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	var batches []finetune.Batch
	for bt, err := range d.Batches(ctx, batch, dataset.BatchOptions{DropLast: true}) {
		if err != nil {
			b.Fatal(err)
		}
		batches = append(batches, finetune.Batch{Images: bt.Images, Labels: bt.Labels})
		if len(batches) == steps+1 {
			break
		}
	}
	if len(batches) < steps+1 {
		b.Fatalf("%d batches of %d, want %d", len(batches), batch, steps+1)
	}
	if _, err := tr.Step(ctx, finetune.Iter{Total: steps + 1}, batches[0]); err != nil {
		b.Fatal(err)
	}
	t0 := time.Now()
	for i := 1; i <= steps; i++ {
		if _, err := tr.Step(ctx, finetune.Iter{Global: i, Step: i, Total: steps + 1}, batches[i]); err != nil {
			b.Fatal(err)
		}
	}
	return float64(steps*batch) / time.Since(t0).Seconds()
}
