#!/usr/bin/env bash
# setup.sh: install what csam-onnx needs on a Debian machine, idempotently.
#
#   scripts/setup.sh              Debian packages, onnxruntime 1.24.3, Go modules
#   scripts/setup.sh --generate   also protobuf-compiler and protoc-gen-go (make generate)
#
# It prints nothing when everything is already present. What it installs:
#   - Debian packages libopenblas-dev (GEMM through cgo), dataset-fashion-mnist
#     (IDX data for tests and the demo), pkg-config and gcc (cgo); with
#     --generate also protobuf-compiler. Installed only when `dpkg -s` says
#     one is missing: then one `apt-get update` and one `apt-get install`.
#   - the onnxruntime 1.24.3 shared library, taken from the npm package
#     onnxruntime-node@1.24.3 (file package/bin/napi-v6/linux/x64/
#     libonnxruntime.so.1), checked against the size and SHA-256 below, into
#     the cache folder: $CSAM_ONNX_CACHE, else $XDG_CACHE_HOME/csam-onnx,
#     else ~/.cache/csam-onnx.
#   - the Go modules of go.mod (`go mod download`).
set -euo pipefail

ORT_VERSION=1.24.3
ORT_MEMBER=package/bin/napi-v6/linux/x64/libonnxruntime.so.1
ORT_SIZE=35164376
ORT_SHA256=92ba8e44d31b80a34f5e805076a044122c3be1fffe0d88ed790de7267b0b2682
PROTOC_GEN_GO_VERSION=v1.36.12

generate=0
for arg in "$@"; do
	case "$arg" in
	--generate) generate=1 ;;
	-h | --help)
		sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "setup.sh: unknown argument $arg (want --generate or nothing)" >&2
		exit 2
		;;
	esac
done

cd "$(dirname "$0")/.."

say() { echo "setup: $*" >&2; }
die() {
	echo "setup: $*" >&2
	exit 1
}

# --- Debian packages -------------------------------------------------------
# python3-onnx: the tests check every model csam-onnx builds with
# onnx.checker (full_check), an independent validator.
pkgs=(libopenblas-dev dataset-fashion-mnist pkg-config gcc python3-onnx)
if [ "$generate" = 1 ]; then
	pkgs+=(protobuf-compiler)
fi
missing=()
for p in "${pkgs[@]}"; do
	if ! dpkg -s "$p" >/dev/null 2>&1; then
		missing+=("$p")
	fi
done
# apt_install PKG...: one `apt-get update`, then install, as root or
# through sudo.
apt_install() {
	command -v apt-get >/dev/null || die "missing Debian packages $*, and there is no apt-get: install them by hand"
	local sudo=""
	if [ "$(id -u)" != 0 ]; then
		command -v sudo >/dev/null || die "missing Debian packages $*: run this script as root or install them"
		sudo=sudo
	fi
	say "installing Debian packages: $*"
	export DEBIAN_FRONTEND=noninteractive
	$sudo apt-get update -qq >/dev/null || die "apt-get update failed"
	$sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null || die "apt-get install $* failed"
}
if [ ${#missing[@]} -gt 0 ]; then
	apt_install "${missing[@]}"
fi

# --- onnxruntime -----------------------------------------------------------
if [ -n "${CSAM_ONNX_CACHE:-}" ]; then
	cache="$CSAM_ONNX_CACHE"
elif [ -n "${XDG_CACHE_HOME:-}" ]; then
	cache="$XDG_CACHE_HOME/csam-onnx"
else
	cache="$HOME/.cache/csam-onnx"
fi
ort_dir="$cache/onnxruntime-$ORT_VERSION"
ort_lib="$ort_dir/libonnxruntime.so.1"

# verify FILE: size and SHA-256 match the recorded ones.
verify() {
	[ -f "$1" ] || return 1
	[ "$(stat -c %s "$1")" = "$ORT_SIZE" ] || return 1
	[ "$(sha256sum "$1" | cut -d' ' -f1)" = "$ORT_SHA256" ] || return 1
}

# The size check is cheap; hashing 35 MB on every run is not, so a file of
# the right size with a stamp newer than itself counts as verified.
stamp="$ort_dir/.verified"
if [ -f "$ort_lib" ] && [ -f "$stamp" ] && [ "$stamp" -nt "$ort_lib" ] &&
	[ "$(stat -c %s "$ort_lib")" = "$ORT_SIZE" ]; then
	:
elif verify "$ort_lib"; then
	touch "$stamp"
else
	if [ -e "$ort_lib" ]; then
		say "$ort_lib does not match onnxruntime $ORT_VERSION (size or SHA-256); fetching it again"
	fi
	if ! command -v npm >/dev/null; then
		# npm is needed only to fetch onnxruntime-node.
		apt_install npm
	fi
	say "fetching onnxruntime $ORT_VERSION (npm package onnxruntime-node@$ORT_VERSION) into $ort_dir"
	tmp="$(mktemp -d)"
	trap 'rm -rf "$tmp"' EXIT
	(cd "$tmp" && npm pack --silent "onnxruntime-node@$ORT_VERSION" >npm-pack.out 2>npm-pack.err) ||
		die "npm pack onnxruntime-node@$ORT_VERSION failed: $(tail -n 3 "$tmp/npm-pack.err" 2>/dev/null)"
	tgz="$(ls "$tmp"/onnxruntime-node-*.tgz 2>/dev/null | head -n 1)"
	[ -n "$tgz" ] || die "npm pack onnxruntime-node@$ORT_VERSION produced no .tgz"
	tar -xzf "$tgz" -C "$tmp" "$ORT_MEMBER" ||
		die "$tgz has no $ORT_MEMBER"
	verify "$tmp/$ORT_MEMBER" ||
		die "$ORT_MEMBER from onnxruntime-node@$ORT_VERSION does not match the recorded size $ORT_SIZE and SHA-256 $ORT_SHA256"
	mkdir -p "$ort_dir"
	# Same-folder temp file + rename: a reader never sees half a library.
	cp "$tmp/$ORT_MEMBER" "$ort_lib.tmp.$$"
	mv -f "$ort_lib.tmp.$$" "$ort_lib"
	touch "$stamp"
	rm -rf "$tmp"
	trap - EXIT
fi

# --- Go --------------------------------------------------------------------
command -v go >/dev/null || die "go is not on PATH: install Go 1.26 (see go.mod)"
go mod download || die "go mod download failed"

if [ "$generate" = 1 ]; then
	gobin="$(go env GOBIN)"
	[ -n "$gobin" ] || gobin="$(go env GOPATH)/bin"
	if [ ! -x "$gobin/protoc-gen-go" ] ||
		! "$gobin/protoc-gen-go" --version 2>/dev/null | grep -q "${PROTOC_GEN_GO_VERSION}"; then
		say "installing protoc-gen-go $PROTOC_GEN_GO_VERSION"
		go install "google.golang.org/protobuf/cmd/protoc-gen-go@$PROTOC_GEN_GO_VERSION"
	fi
fi
