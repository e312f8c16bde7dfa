#!/usr/bin/env bash
# Runs `csam-onnx compress` on one model for every method × sparsity with a
# fixed budget and prints a Markdown table of the results (from the JSON
# reports compress writes). Usage:
#   scripts/compress_matrix.sh BIN MODEL DATA OUTDIR [extra compress flags...]
# Example (docs/compress.md):
#   scripts/compress_matrix.sh bin/csam-onnx models/fmnist_resnet8.onnx fashion-mnist out/matrix \
#     --search-epochs 1 --finetune-epochs 1 --train-subset 10000
set -euo pipefail
bin=$1 model=$2 data=$3 out=$4
shift 4
mkdir -p "$out"
methods=${METHODS:-"csam magnitude gmp sam-prune prune-sam hydra"}
sparsities=${SPARSITIES:-"0.5 0.7 0.9"}
for s in $sparsities; do
	for m in $methods; do
		f="$out/${m}_s${s}.onnx"
		if [ -f "$f.json" ]; then continue; fi
		start=$(date +%s)
		"$bin" compress "$model" --data "$data" --sparsity "$s" --method "$m" -q "$@" -o "$f" >"$f.log" 2>&1 ||
			{ echo "compress $m $s failed, see $f.log" >&2; continue; }
		echo "$m $s done in $(($(date +%s) - start)) s" >&2
	done
done
echo "| method | target sparsity | achieved | worst layer (its size) | test acc. onnxruntime | test acc. Go engine | max logit diff | file / gzip KiB | wall s |"
echo "|---|---|---|---|---|---|---|---|---|"
for s in $sparsities; do
	for m in $methods; do
		j="$out/${m}_s${s}.onnx.json"
		[ -f "$j" ] || continue
		/usr/bin/python3 - "$j" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
c, res, sz = r["check"], r["result"], r["size"]
target = r['config']['Sparsity']
# The layer whose sparsity is farthest from the target (layer-wise top-k
# keeps ceil(density * n) weights, so a layer of n weights can be off by
# up to 1/n).
worst = max(res["layers"], key=lambda l: abs(l["sparsity"] - target))
print(f"| {res['method']} | {target} | {res['sparsity']:.4f} | {worst['sparsity']:.4f} ({worst['params']}) | "
      f"{100*c['accuracy_onnxruntime']:.2f}% | "
      f"{100*c['accuracy_go_engine']:.2f}% | {c['max_abs_logit_diff']:.1e} | {sz['bytes']/1024:.0f} / {sz['gzip_bytes']/1024:.0f} | {r['wall_seconds']:.0f} |")
PY
	done
done
