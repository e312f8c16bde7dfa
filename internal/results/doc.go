// Package results reads the per-cell result files an experiment writes
// (one JSON file per (data, architecture, sparsity, method, seed) cell, see
// Cell) and regenerates the summary from them alone: docs/RESULTS.md with
// one table per (data, architecture, sparsity), mean ± standard deviation
// over seeds, a computed comparison of C-SAM against each baseline, and PNG
// plots drawn with gonum/plot.
//
// Regeneration is deterministic: the same files give byte-identical
// Markdown and PNG output (no timestamps, no map-order dependence).
package results
