#!/usr/bin/env bash
# The CPU half of RESULTS.md: runs every evaluation of the shipped models and writes one JSON per
# command to results/data/ (the GPU half is in results/data/gpu/, from results/train_gpu.py and
# the attack commands listed in RESULTS.md). Then `python3 results/make_results.py` rewrites
# RESULTS.md from those JSONs.
#
#   results/run_cpu.sh CIFAR_DIR        # CIFAR_DIR holds cifar-10-batches-py
#
# with `spikemesh` on the PATH (e.g. `. .venv/bin/activate`). ENCODING_MODELS=DIR points at the
# rate/phase/latency checkpoints (results/train_gpu.py writes them; they are not shipped).
#
# About 60 minutes on two CPU cores. Chip images, traffic maps and logs go to results/build/
# (not committed: one command remakes each).
set -euo pipefail
DATA=${1:?usage: results/run_cpu.sh CIFAR_DIR}
cd "$(dirname "$0")/.."
OUT=results/data
BUILD=results/build
ENC=${ENCODING_MODELS:-$BUILD/models}     # the rate/phase/latency checkpoints, if present
mkdir -p "$OUT" "$BUILD"
run() {   # one command, its output and wall-clock seconds appended to the log
  echo "+ $*" >&2
  local t0=$SECONDS
  "$@" >>"$BUILD/log.txt" 2>&1
  echo "  $((SECONDS - t0)) s" >>"$BUILD/log.txt"
}

for m in q4 q4-hire; do
  other=$([ $m = q4 ] && echo q4-hire || echo q4)
  pt=models/vgg5-cifar10-$m.pt
  chip=$BUILD/vgg5-cifar10-$m.chip
  run spikemesh compile "$pt" -o "$chip" --data-dir "$DATA" --verify 1000 --json "$OUT/compile-$m.json" --quiet
  run spikemesh simulate "$chip" --data-dir "$DATA" --n 5000 --no-noc --json "$BUILD/clean-hw-$m.json" --quiet
  run spikemesh simulate "$chip" --data-dir "$DATA" --n 200 --json "$BUILD/noc-$m.json" --quiet
  python3 results/make_results.py trim "$BUILD/clean-hw-$m.json" "$OUT/clean-hw-$m.json"
  python3 results/make_results.py trim "$BUILD/noc-$m.json" "$OUT/noc-$m.json"
  common=(--data-dir "$DATA" --chip-image "$chip" --quiet)
  run spikemesh attack "$pt" "${common[@]}" --levels algo,quant,hw --n 2000 --eps 2,8,16 --json "$OUT/fgsm-$m.json"
  run spikemesh attack "$pt" "${common[@]}" --levels algo,quant,hw --n 1000 --attack pgd --eps 8 --json "$OUT/pgd-$m.json"
  run spikemesh attack "$pt" "${common[@]}" --levels quant,hw --n 1000 --source hw --eps 8 --json "$OUT/fgsm-hwste-$m.json"
  run spikemesh attack "$pt" "${common[@]}" --levels algo,quant,hw --n 1000 --source-model "models/vgg5-cifar10-$other.pt" --eps 8 --json "$OUT/transfer-from-$other-$m.json"
done
run spikemesh traffic "$BUILD/vgg5-cifar10-q4.chip" --adversarial models/vgg5-cifar10-q4.pt --data-dir "$DATA" --n 32 -o "$BUILD/traffic-q4" --json "$OUT/traffic-q4.json" --quiet
for map in clean_packets_in adversarial_packets_in difference_packets_in; do
  cp "$BUILD/traffic-q4/$map.png" "docs/results-traffic-q4-${map%_packets_in}.png"
done
# the host input path (the host computes conv1's currents) beside the graded one the preset uses
sed 's/^  input_path: graded /  input_path: host   /' compiler/presets/pku-nc64c.yaml >"$BUILD/pku-nc64c-host.yaml"
run spikemesh compile models/vgg5-cifar10-q4.pt --chip "$BUILD/pku-nc64c-host.yaml" -o "$BUILD/q4-host.chip" --data-dir "$DATA" --verify 1000 --json "$OUT/compile-q4-host.json" --quiet
run spikemesh simulate "$BUILD/q4-host.chip" --data-dir "$DATA" --n 5000 --no-noc --json "$BUILD/clean-hw-q4-host.json" --quiet
python3 results/make_results.py trim "$BUILD/clean-hw-q4-host.json" "$OUT/clean-hw-q4-host.json"
for m in q4 q4-hire; do
  run spikemesh attack models/vgg5-cifar10-$m.pt --data-dir "$DATA" --chip-image "$BUILD/vgg5-cifar10-$m.chip" --quiet --levels hw --attack square --n 100 --queries 500 --eps 8 --json "$OUT/square-hw-$m.json"
done
for e in rate phase latency; do
  pt=$ENC/vgg5-cifar10-$e-t8.pt
  [ -f "$pt" ] || { echo "skip $e: $pt absent (train it with the command in RESULTS.md)" >&2; continue; }
  run spikemesh attack "$pt" --data-dir "$DATA" --levels algo,quant --n 1000 --eps 2,8,16 --quiet --json "$OUT/fgsm-$e-t8.json"
done
echo "done; now: python3 results/make_results.py" >&2
