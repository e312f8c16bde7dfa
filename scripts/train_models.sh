#!/bin/sh
# Trains, or resumes, the reference models of models/README.md with the
# commands written there, into OUT/<name>.onnx (+ .json, .curves.png,
# train.log). A model whose .onnx and .json exist is skipped; an
# interrupted one resumes from its checkpoint, so rerunning the same
# command continues across sessions.
#
#   scripts/train_models.sh BIN OUT [MODEL...]
#
# MODEL is one of the names below (default: all of them). JOBS=2 runs two
# lanes side by side with one thread each, which on a 2-core machine
# does ≈ 1.25x the work per hour of one queue on both cores
# (docs/performance.md); each lane takes the next model no lane has
# taken, and a lane that finds none left hands its core to the training
# still running: it interrupts it (SIGINT: train saves a checkpoint and
# exits 2) and that lane resumes it at once with two threads (the
# engine's results do not depend on the thread count). JOBS=1 (the
# default) runs one queue with THREADS (default 0: one per core).
# CIFAR=<dir> is the CIFAR-10 data (default ../shared/data/cifar10).
#
# STATE=<dir> is a folder that outlives the machine (the project commits
# models/training/): before training, every file there that OUT lacks is
# copied into OUT, so a fresh machine resumes where the last one stopped.
#
#   scripts/train_models.sh save OUT STATE
#
# fills it: OUT's checkpoints (NAME.onnx.ckpt), their epoch records,
# the logs and the finished models (.onnx, .onnx.json, .onnx.curves.png)
# are copied into STATE, and STATE's checkpoints of trainings OUT has
# finished (NAME.onnx.json written) are removed. Interrupt the trainings first (SIGINT
# saves a checkpoint) to save the latest step.
set -eu
if [ "${1:-}" = save ]; then
	[ $# -eq 3 ] || { echo "usage: $0 save OUT STATE" >&2; exit 2; }
	OUT=$2 STATE=$3
	[ -d "$OUT" ] || { echo "$0: $OUT is not a folder" >&2; exit 2; }
	mkdir -p "$STATE"
	# A checkpoint before its epoch records: records may then be one
	# epoch ahead of the checkpoint (that epoch is trained and recorded
	# again on resume, with the same figures), never behind.
	for pat in '*.onnx.ckpt' '*.onnx.ckpt.epochs.jsonl' '*.log' '*.onnx' '*.onnx.json' '*.onnx.curves.png'; do
		for f in "$OUT"/$pat; do
			[ -f "$f" ] || continue
			b=$(basename "$f")
			cmp -s "$f" "$STATE/$b" && continue
			cp "$f" "$STATE/.$b.tmp" && mv "$STATE/.$b.tmp" "$STATE/$b"
			echo "saved $STATE/$b"
		done
	done
	for f in "$STATE"/*.onnx.ckpt "$STATE"/*.onnx.ckpt.epochs.jsonl; do
		[ -f "$f" ] || continue
		b=$(basename "$f")
		[ -f "$OUT/${b%%.onnx.ckpt*}.onnx.json" ] || continue
		rm -f "$f"
		echo "removed $STATE/$b (its training has finished)"
	done
	exit 0
fi
# scripts/train_models.sh status OUT: each training's test accuracy after
# every epoch so far (– where an epoch was not evaluated), and each
# finished model's accuracy in onnxruntime.
if [ "${1:-}" = status ]; then
	[ $# -eq 2 ] || { echo "usage: $0 status OUT" >&2; exit 2; }
	for f in "$2"/*.onnx.ckpt.epochs.jsonl; do
		[ -f "$f" ] || continue
		b=$(basename "$f" .onnx.ckpt.epochs.jsonl)
		[ -f "$2/$b.onnx.json" ] && continue
		awk -v name="$b" '
			match($0, /"epoch":[0-9]+/) { e = substr($0, RSTART + 8, RLENGTH - 8) + 0 }
			match($0, /"test_accuracy":-?[0-9.eE+-]+/) { acc[e] = substr($0, RSTART + 16, RLENGTH - 16) + 0 }
			e > last { last = e }
			END {
				printf "%s: %d epochs, test accuracy (%%):", name, last
				for (i = 1; i <= last; i++) printf " %s", (i in acc && acc[i] >= 0) ? sprintf("%.1f", 100 * acc[i]) : "-"
				print ""
			}' "$f"
	done
	for f in "$2"/*.onnx.json; do
		[ -f "$f" ] || continue
		acc=$(sed -n 's/.*"test_accuracy_onnxruntime": *\([0-9.eE+-]*\).*/\1/p' "$f")
		[ -n "$acc" ] && awk -v n="$(basename "$f" .onnx.json)" -v a="$acc" 'BEGIN { printf "%s: done, test accuracy %.2f%% in onnxruntime\n", n, 100 * a }'
	done
	exit 0
fi
[ $# -ge 2 ] || { echo "usage: $0 BIN OUT [MODEL...] | $0 save OUT STATE | $0 status OUT" >&2; exit 2; }
BIN=$1
OUT=$2
shift 2
JOBS=${JOBS:-1}
THREADS=${THREADS:-0}
CIFAR=${CIFAR:-../shared/data/cifar10}
ALL="fmnist_resnet8 cifar10_resnet18_w0.25 cifar10_resnet18_w0.5 cifar10_mobilenetv2_w0.5 cifar10_googlenet_w0.25"
MODELS=${*:-$ALL}
case $JOBS in 1) ;; 2) THREADS=1 ;; *) echo "$0: JOBS must be 1 or 2" >&2; exit 2 ;; esac
[ -x "$BIN" ] || { echo "$0: $BIN is not an executable (run make build)" >&2; exit 2; }
for m in $MODELS; do
	case " $ALL " in *" $m "*) ;; *) echo "$0: unknown model $m (one of: $ALL)" >&2; exit 2 ;; esac
done
mkdir -p "$OUT"

# Files the state folder has and OUT lacks; not the checkpoint of a
# training OUT has finished.
if [ -n "${STATE:-}" ] && [ -d "$STATE" ]; then
	for f in "$STATE"/*; do
		[ -f "$f" ] || continue
		b=$(basename "$f")
		[ -e "$OUT/$b" ] && continue
		case $b in
		*.onnx.ckpt | *.onnx.ckpt.epochs.jsonl)
			[ -f "$OUT/${b%%.onnx.ckpt*}.onnx.json" ] && continue ;;
		*.log | *.onnx | *.onnx.json | *.onnx.curves.png) ;;
		*) continue ;; # not a file save writes (a README, say)
		esac
		cp "$f" "$OUT/.$b.tmp" && mv "$OUT/.$b.tmp" "$OUT/$b"
		echo "restored $OUT/$b from $STATE"
	done
fi

done_already() { [ -f "$OUT/$1.onnx" ] && [ -f "$OUT/$1.onnx.json" ]; }

# The lanes' shared state: a folder per model taken, NAME.pid while its
# training runs, NAME.rethread when another lane interrupted it, and
# "threads" once a lane has run out of models.
CLAIMS=$OUT/.claims
rm -rf "$CLAIMS"
mkdir -p "$CLAIMS"
threads() { cat "$CLAIMS/threads" 2>/dev/null || echo "$THREADS"; }

# run NAME LOG ARGS...: "$BIN" ARGS... with the current thread count,
# appending to LOG; rerun with the new count when another lane
# interrupted it to hand over its core.
run() {
	name=$1 log=$2
	shift 2
	while :; do
		t=$(threads)
		"$BIN" --threads "$t" "$@" >> "$log" 2>&1 &
		echo $! > "$CLAIMS/$name.pid"
		rc=0
		wait $! || rc=$?
		rm -f "$CLAIMS/$name.pid"
		if [ -f "$CLAIMS/$name.rethread" ] && [ "$(threads)" != "$t" ]; then
			rm -f "$CLAIMS/$name.rethread"
			echo "$name: continues with $(threads) threads"
			continue
		fi
		return $rc
	done
}

# accuracy FILE.json: the onnxruntime test accuracy train recorded there.
accuracy() { sed -n 's/.*"test_accuracy_onnxruntime": *\([0-9.eE+-]*\).*/\1/p' "$1"; }

# cifar NAME ARCH WIDTH EPOCHS TARGET: the CIFAR-10 recipe of
# models/README.md. A model that ends below TARGET (issue 4's figure for
# its architecture; 0: none) is continued for 10 more epochs from
# learning rate 0.02 (a second cosine, as the Fashion-MNIST model's third
# phase) into NAME.ft.onnx, which is then the file to ship.
cifar() {
	if done_already "$1"; then
		echo "$1: done, skipped"
	else
		echo "$1: training ($4 epochs, log in $OUT/$1.log)"
		run "$1" "$OUT/$1.log" -q train --arch "$2" --width "$3" --data "cifar10:$CIFAR" --epochs "$4" \
			--batch 128 --lr 0.1 --warmup 1 --resume -o "$OUT/$1.onnx" || return
	fi
	acc=$(accuracy "$OUT/$1.onnx.json")
	[ -n "$acc" ] || { echo "$0: no test_accuracy_onnxruntime in $OUT/$1.onnx.json" >&2; return 1; }
	awk "BEGIN { exit !($acc >= $5) }" && return 0
	done_already "$1.ft" && { echo "$1.ft: done, skipped"; return 0; }
	echo "$1: test accuracy $acc is below $5: continued for 10 epochs into $OUT/$1.ft.onnx"
	run "$1" "$OUT/$1.log" -q train --init "$OUT/$1.onnx" --data "cifar10:$CIFAR" --epochs 10 \
		--batch 128 --lr 0.02 --warmup 0 --resume -o "$OUT/$1.ft.onnx"
}

# The Fashion-MNIST model: three phases, each continuing the last.
fmnist() {
	done_already fmnist_resnet8 && { echo "fmnist_resnet8: done, skipped"; return 0; }
	echo "fmnist_resnet8: training (3 phases, log in $OUT/fmnist_resnet8.log)"
	log=$OUT/fmnist_resnet8.log
	done_already fmnist_resnet8.phase1 || run fmnist_resnet8 "$log" -q train --arch resnet8 --width 1 --data fashion-mnist \
		--epochs 3 --batch 128 --lr 0.1 --warmup 0.5 --resume -o "$OUT/fmnist_resnet8.phase1.onnx"
	done_already fmnist_resnet8.phase2 || run fmnist_resnet8 "$log" -q train --init "$OUT/fmnist_resnet8.phase1.onnx" --data fashion-mnist \
		--epochs 2 --batch 128 --lr 0.02 --warmup 0 --resume -o "$OUT/fmnist_resnet8.phase2.onnx"
	run fmnist_resnet8 "$log" -q train --init "$OUT/fmnist_resnet8.phase2.onnx" --data fashion-mnist \
		--epochs 10 --batch 128 --lr 0.05 --warmup 0 --resume -o "$OUT/fmnist_resnet8.onnx"
}

one() {
	case $1 in
	fmnist_resnet8) fmnist ;;
	cifar10_resnet18_w0.25) cifar "$1" resnet18 0.25 40 0 ;; # the small one: no target
	cifar10_resnet18_w0.5) cifar "$1" resnet18 0.5 30 0.90 ;;
	cifar10_mobilenetv2_w0.5) cifar "$1" mobilenetv2 0.5 40 0.87 ;;
	cifar10_googlenet_w0.25) cifar "$1" googlenet 0.25 40 0.87 ;;
	esac
}

# lane: the models no lane has taken yet, one after another; then the
# trainings still running get this lane's core.
lane() {
	for m in $MODELS; do
		mkdir "$CLAIMS/$m" 2>/dev/null || continue
		one "$m"
	done
	[ "$JOBS" -gt 1 ] || return 0
	echo 2 > "$CLAIMS/threads"
	for f in "$CLAIMS"/*.pid; do
		[ -f "$f" ] || continue
		n=$(basename "$f" .pid)
		touch "$CLAIMS/$n.rethread"
		kill -INT "$(cat "$f")" 2>/dev/null || true
	done
}

if [ "$JOBS" -eq 1 ]; then
	lane
else
	lane &
	a=$!
	sleep 1
	lane &
	b=$!
	rc=0
	wait $a || rc=1
	wait $b || rc=1
	exit $rc
fi
