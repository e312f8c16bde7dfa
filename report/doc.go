// Package report turns verification results into report.json (a stable
// schema, see Schema), report.md and a self-contained report.html with PNG
// plots drawn by gonum/plot: accuracy vs corruption severity per family,
// CC-Cert certified accuracy vs ε, smoothing certified accuracy vs radius,
// and sparsity per layer.
//
// The package only formats: it does not run models. Writers return errors;
// WriteDir writes each file atomically.
package report
