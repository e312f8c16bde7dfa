package results

import (
	"cmp"
	"math"
	"slices"
	"strconv"
)

// Metric names the figures a table shows per method.
type Metric int

// The table's figures, in column order.
const (
	Clean Metric = iota
	CorruptionMean
	CCCert1e3
	Smoothing025
	Nonzero
	FileBytes
	GzipBytes
	LatencyB1
	numMetrics
)

// value returns a cell's figure and whether the cell measured it.
func (c *Cell) value(m Metric) (float64, bool) {
	r := c.Verify
	switch m {
	case Clean:
		return r.Clean.Accuracy, r.Clean.Images > 0
	case CorruptionMean:
		if r.Corruptions == nil || len(r.Corruptions.Items) == 0 {
			return 0, false
		}
		return r.Corruptions.Mean, true
	case CCCert1e3:
		return ccAt(c, 1e-3)
	case Smoothing025:
		if s := r.Smoothing; s != nil {
			for i, rad := range s.Radii {
				if near(rad, 0.25) && i < len(s.Certified) {
					return s.Certified[i], true
				}
			}
		}
	case Nonzero:
		return float64(r.Model.Nonzero), r.Model.Params > 0
	case FileBytes:
		return float64(r.Model.Bytes), r.Model.Bytes > 0
	case GzipBytes:
		return float64(r.Model.GzipBytes), r.Model.GzipBytes > 0
	case LatencyB1:
		v, ok := r.Model.LatencyMs["1"]
		return v, ok
	}
	return 0, false
}

func ccAt(c *Cell, eps float64) (float64, bool) {
	if cc := c.Verify.CCCert; cc != nil {
		for i, e := range cc.Eps {
			if near(e, eps) && i < len(cc.Certified) {
				return cc.Certified[i], true
			}
		}
	}
	return 0, false
}

// near compares configuration constants written as decimal literals.
func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(math.Abs(a), math.Abs(b)) }

// Stat is a mean and sample standard deviation over N seeds.
type Stat struct {
	Mean, Std float64
	N         int
}

func newStat(xs []float64) Stat {
	s := Stat{N: len(xs)}
	if s.N == 0 {
		return s
	}
	for _, x := range xs {
		s.Mean += x
	}
	s.Mean /= float64(s.N)
	if s.N > 1 {
		var ss float64
		for _, x := range xs {
			ss += (x - s.Mean) * (x - s.Mean)
		}
		s.Std = math.Sqrt(ss / float64(s.N-1))
	}
	return s
}

// Row is one method in a group: its cells (one per seed) and statistics.
type Row struct {
	Method     string
	BaseMethod string
	Order      int
	Cells      []*Cell
	Stats      [numMetrics]Stat
}

// Dense reports whether the row is the unpruned reference.
func (r *Row) Dense() bool { return r.BaseMethod == "" }

// Group is one table: a (data, arch, sparsity) with a row per method. The
// dense row is shared by every sparsity of its (data, arch).
type Group struct {
	Data, Arch string
	Sparsity   float64
	Rows       []*Row
}

// Key is the group's file-name-safe identifier.
func (g *Group) Key() string {
	return g.Data + "_" + g.Arch + "_s" + strconv.FormatFloat(g.Sparsity, 'g', -1, 64)
}

// Row returns the row of the named method, or nil.
func (g *Group) Row(method string) *Row {
	for _, r := range g.Rows {
		if r.Method == method {
			return r
		}
	}
	return nil
}

// Groups arranges cells into tables sorted by data, arch and sparsity,
// rows in the experiment's method order.
func Groups(cells []*Cell) []*Group {
	type da struct{ data, arch string }
	sparsities := map[da][]float64{}
	for _, c := range cells {
		k := da{c.Data, c.Arch}
		if _, ok := sparsities[k]; !ok {
			sparsities[k] = nil
		}
		if !c.Dense() && !slices.Contains(sparsities[k], c.Sparsity) {
			sparsities[k] = append(sparsities[k], c.Sparsity)
		}
	}
	var groups []*Group
	for k, sps := range sparsities {
		if len(sps) == 0 {
			sps = []float64{0} // only dense cells so far
		}
		for _, sp := range sps {
			g := &Group{Data: k.data, Arch: k.arch, Sparsity: sp}
			for _, c := range cells {
				if c.Data != k.data || c.Arch != k.arch || (!c.Dense() && c.Sparsity != sp) {
					continue
				}
				r := g.Row(c.Method)
				if r == nil {
					r = &Row{Method: c.Method, BaseMethod: c.BaseMethod, Order: c.MethodOrder}
					g.Rows = append(g.Rows, r)
				}
				r.Cells = append(r.Cells, c)
			}
			for _, r := range g.Rows {
				slices.SortFunc(r.Cells, func(a, b *Cell) int { return cmp.Compare(a.Seed, b.Seed) })
				for m := range numMetrics {
					var xs []float64
					for _, c := range r.Cells {
						if v, ok := c.value(m); ok {
							xs = append(xs, v)
						}
					}
					r.Stats[m] = newStat(xs)
				}
			}
			slices.SortFunc(g.Rows, func(a, b *Row) int {
				return cmp.Or(cmp.Compare(a.Order, b.Order), cmp.Compare(a.Method, b.Method))
			})
			groups = append(groups, g)
		}
	}
	slices.SortFunc(groups, func(a, b *Group) int {
		return cmp.Or(cmp.Compare(a.Data, b.Data), cmp.Compare(a.Arch, b.Arch), cmp.Compare(a.Sparsity, b.Sparsity))
	})
	return groups
}
