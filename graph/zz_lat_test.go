package graph_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/csam-onnx/csam-onnx/graph"
	"github.com/csam-onnx/csam-onnx/internal/testenv"
	"github.com/csam-onnx/csam-onnx/models"
	"github.com/csam-onnx/csam-onnx/onnxio"
	"github.com/csam-onnx/csam-onnx/runtime"
)

func TestZZLatency(t *testing.T) {
	runtime.Init(testenv.ORTLibrary(t))
	for _, cfg := range []models.Config{
		{Arch: "resnet8", Width: 1, InputSize: 32, Seed: 1},
		{Arch: "resnet18", Width: 0.5, InputSize: 32, Seed: 1},
		{Arch: "mobilenetv2", Width: 0.5, InputSize: 32, Seed: 1},
		{Arch: "googlenet", Width: 0.25, InputSize: 32, Seed: 1},
	} {
		m, _ := models.Build(cfg)
		gs, _ := graph.ChannelGroups(m)
		keep := map[int][]int{}
		for _, g := range gs {
			if g.Prunable {
				for c := 0; c < (g.Channels+1)/2; c++ {
					keep[g.ID] = append(keep[g.ID], c)
				}
			}
		}
		shrunk := m.Clone()
		if err := graph.RemoveChannels(shrunk, keep); err != nil { t.Fatal(err) }
		var sess [2]*runtime.Session
		for i, mm := range []*graph.Model{m, shrunk} {
			b, _ := onnxio.Marshal(mm)
			sess[i], _ = runtime.OpenBytes(b, &runtime.SessionOptions{IntraOpThreads: 2})
		}
		for _, batch := range []int{1, 64} {
			runs := 30
			if batch == 64 { runs = 5 }
			var med [2][]float64
			for rep := 0; rep < 3; rep++ {
				for i := range sess {
					l, err := runtime.MeasureLatency(context.Background(), sess[i], batch, &runtime.LatencyOptions{Warmup: 2, Runs: runs})
					if err != nil { t.Fatal(err) }
					med[i] = append(med[i], float64(l.Median.Microseconds())/1000)
				}
			}
			fmt.Printf("%s w%.2g batch %d: params %d -> %d; median ms dense %v shrunk %v\n", cfg.Arch, cfg.Width, batch, params(m), params(shrunk), med[0], med[1])
		}
		sess[0].Close(); sess[1].Close()
	}
}
