package autodiff

// Test-only exports for the external test package (autodiff_test), which
// compares the engine with onnxruntime on the same model.
var (
	CoreResNet18   = coreResNet18
	CoreCPUSeconds = coreCPUSeconds
	CorePeakRSS    = corePeakRSS
)
