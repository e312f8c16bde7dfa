// Package onnxpb holds the Go types generated from csam-onnx's own onnx.proto.
package onnxpb

//go:generate protoc --plugin=protoc-gen-go=$GOPATH/bin/protoc-gen-go --go_out=. --go_opt=paths=source_relative onnx.proto
