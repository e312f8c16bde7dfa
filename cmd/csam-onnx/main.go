// Command csam-onnx prunes ONNX image classifiers with C-SAM and verifies
// the pruned files in onnxruntime. See the README for its commands.
//
// Exit status:
//
//	0  success
//	1  error (the message says what and what to do)
//	2  usage error, or interrupted (Ctrl-C, SIGTERM)
//	3  check failed: outputs differ beyond the tolerance
//
// main only turns the command's error into one line on stderr and an exit
// status; everything else lives in internal/cli.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/csam-onnx/csam-onnx/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	ios := cli.System()
	err := cli.Execute(ctx, ios, os.Args[1:])
	if err != nil && ctx.Err() != nil && !errors.Is(err, context.Canceled) {
		// Keep the command's own message (it may say how to resume).
		err = fmt.Errorf("interrupted: %v: %w", err, context.Canceled)
	}
	stop()
	code := cli.ExitCode(err)
	if err != nil {
		fmt.Fprintln(ios.ErrOut, "csam-onnx: "+cli.OneLine(err))
	}
	os.Exit(code)
}
