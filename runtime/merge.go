package runtime

import (
	"cmp"
	"fmt"
	"slices"
)

// MergeCC joins CC-Cert results of disjoint shards of one data set (as
// `--shard i/N` runs produce) into one, with samples in index order. The
// shards must share every setting, and no sample may appear twice.
func MergeCC(parts ...*CCCertResult) (*CCCertResult, error) {
	if len(parts) == 0 {
		return nil, fmt.Errorf("runtime: merge CC-Cert: no results")
	}
	first := parts[0]
	out := *first
	out.Epsilons = slices.Clone(first.Epsilons)
	out.Samples = nil
	for i, p := range parts {
		if p.Seed != first.Seed || p.N != first.N || p.K != first.K || p.Delta != first.Delta ||
			p.Temperatures != first.Temperatures || p.TMin != first.TMin || p.TMax != first.TMax || p.Probabilities != first.Probabilities || p.GridPoints != first.GridPoints {
			return nil, fmt.Errorf("runtime: merge CC-Cert: part %d has settings (seed %d, n %d, k %d, δ %v, %d temperatures, probabilities %v, grid %d) that differ from part 0 (seed %d, n %d, k %d, δ %v, %d temperatures, probabilities %v, grid %d)",
				i, p.Seed, p.N, p.K, p.Delta, p.Temperatures, p.Probabilities, p.GridPoints, first.Seed, first.N, first.K, first.Delta, first.Temperatures, first.Probabilities, first.GridPoints)
		}
		out.Samples = append(out.Samples, p.Samples...)
	}
	slices.SortStableFunc(out.Samples, func(a, b CCSample) int { return cmp.Compare(a.Index, b.Index) })
	for i := 1; i < len(out.Samples); i++ {
		if out.Samples[i].Index == out.Samples[i-1].Index {
			return nil, fmt.Errorf("runtime: merge CC-Cert: sample %d appears in more than one part; shards must not overlap", out.Samples[i].Index)
		}
	}
	return &out, nil
}

// MergeSmoothing joins randomized-smoothing results of disjoint shards of
// one data set into one, with samples in index order.
func MergeSmoothing(parts ...*SmoothingResult) (*SmoothingResult, error) {
	if len(parts) == 0 {
		return nil, fmt.Errorf("runtime: merge smoothing: no results")
	}
	first := parts[0]
	out := *first
	out.Samples = nil
	for i, p := range parts {
		if p.Seed != first.Seed || p.Sigma != first.Sigma || p.N0 != first.N0 || p.N != first.N || p.Alpha != first.Alpha {
			return nil, fmt.Errorf("runtime: merge smoothing: part %d has settings (seed %d, σ %v, n0 %d, n %d, α %v) that differ from part 0 (seed %d, σ %v, n0 %d, n %d, α %v)",
				i, p.Seed, p.Sigma, p.N0, p.N, p.Alpha, first.Seed, first.Sigma, first.N0, first.N, first.Alpha)
		}
		out.Samples = append(out.Samples, p.Samples...)
	}
	slices.SortStableFunc(out.Samples, func(a, b SmoothSample) int { return cmp.Compare(a.Index, b.Index) })
	for i := 1; i < len(out.Samples); i++ {
		if out.Samples[i].Index == out.Samples[i-1].Index {
			return nil, fmt.Errorf("runtime: merge smoothing: sample %d appears in more than one part; shards must not overlap", out.Samples[i].Index)
		}
	}
	return &out, nil
}
