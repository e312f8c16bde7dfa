package autodiff

import (
	"fmt"
	"testing"

	"github.com/csam-onnx/csam-onnx/onnxio"
)

func TestCoreDebugSqueeze(t *testing.T) {
	dir := "/work/shared/onnx-conformance/light-models/light_squeezenet/"
	m, err := onnxio.ReadFile(dir + "model.onnx")
	if err != nil {
		t.Fatal(err)
	}
	x, err := onnxio.ReadTensorFile(dir + "test_data_set_0/input_0.pb")
	if err != nil {
		t.Fatal(err)
	}
	want, _ := onnxio.ReadTensorFile(dir + "test_data_set_0/output_0.pb")
	p, err := Compile(m, [][]int{x.Shape}, nil)
	if err != nil {
		t.Fatal(err)
	}
	copy(p.Input(0).F32, x.F32)
	if err := p.Forward(); err != nil {
		t.Fatal(err)
	}
	for _, n := range m.Graph.Nodes {
		for _, o := range n.Outputs {
			v := p.Value(o)
			if v == nil || v.F32 == nil {
				continue
			}
			mn, mx := v.F32[0], v.F32[0]
			for _, f := range v.F32 {
				mn = min(mn, f)
				mx = max(mx, f)
			}
			fmt.Println(n.OpType, o, v.Shape, mn, mx)
		}
	}
	fmt.Println(want.F32[:5], p.Output(0).F32[:5])
}
