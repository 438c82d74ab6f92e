#!/usr/bin/env bash
# The GPU checks of issue 16 in one run (< 10 min on one current GPU); writes its figures to
# ${OUT:-benchmarks/results}/gpu_checks.json and the test logs next to it.
#   1. tests of the sampler, the batched applier and the DALI loader on the GPU
#      (SOLO_EQUIMOD_TEST_DEVICE=cuda: applier on cuda tensors; DALI `mixed` decoding + GPU operators,
#      re-application and the parameters replayed from the one sampler)
#   2. views/s of torchvision (DataLoader), DALI (GPU) and the batched applier (GPU), CIFAR SimCLR
#      and ImageNet BYOL policies (benchmarks/dali_throughput.py; target >= 200,000 CIFAR views/s)
#   3. wall time of one epoch of SimCLR+EquiMod, ResNet-18, batch 512, on 50,000 CIFAR-size
#      (32 px) synthetic images, data.format=tensor vs image_folder
#     bash benchmarks/gpu_checks.sh          # on a GPU machine
#     bash benchmarks/gpu_checks.sh --cpu    # smoke test of the script itself on CPU, tiny sizes
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
OUT=${OUT:-benchmarks/results}
mkdir -p "$OUT"
if [[ "${1:-}" == "--cpu" ]]; then
  DEVICE=cpu; ACCEL=cpu; IMAGES=512; BATCH=64; EPOCHS=1; BACKBONE="backbone.name=tiny_cnn +backbone.kwargs.width=8"
  TESTS="tests/test_batched_applier.py -k hand_made"
else
  DEVICE=cuda; ACCEL=gpu; IMAGES=50000; BATCH=512; EPOCHS=3; BACKBONE="backbone.name=resnet18"
  TESTS="tests/test_sampler.py tests/test_batched_applier.py tests/test_dali.py tests/test_tensor_loader.py"
  $PY -c "import torch; assert torch.cuda.is_available(), 'no CUDA device: run with --cpu for the smoke test'"
fi

status=0
SOLO_EQUIMOD_TEST_DEVICE=$DEVICE timeout 240 $PY -m pytest -q -p no:cacheprovider $TESTS > "$OUT/gpu_tests.log" 2>&1 || status=$?
tail -3 "$OUT/gpu_tests.log"

for dataset in cifar imagenet; do
  timeout 150 $PY benchmarks/dali_throughput.py --dataset $dataset --device $DEVICE --batch-size $BATCH \
    --epochs $EPOCHS --limit $((BATCH * 4)) --json "$OUT/throughput_$dataset.json" --out "$OUT/throughput_$dataset.md" \
    || echo "throughput $dataset failed"
done

for format in tensor image_folder; do
  start=$(date +%s.%N)
  timeout 150 $PY main_pretrain.py --config-path scripts/pretrain/cifar --config-name simclr_equimod.yaml \
    data.dataset=synthetic data.synthetic_size=$IMAGES data.format=$format data.num_workers=8 $BACKBONE \
    optimizer.batch_size=$BATCH max_epochs=1 limit_val_batches=0 accelerator=$ACCEL devices=1 precision=32-true \
    checkpoint.enabled=false wandb.enabled=false name=gpu-check-$format checkpoint.dir="$OUT/gpu_check_runs" \
    > "$OUT/epoch_$format.log" 2>&1 && echo "$start $(date +%s.%N)" > "$OUT/epoch_$format.s" \
    || { echo "epoch $format failed (see $OUT/epoch_$format.log)"; echo null > "$OUT/epoch_$format.s"; }
done

$PY - "$OUT" "$status" <<'PY'
import json, sys
from pathlib import Path
out, status = Path(sys.argv[1]), int(sys.argv[2])
def read(name):
    path = out / name
    return json.loads(path.read_text()) if path.is_file() else None
def seconds(name):
    path = out / name
    parts = path.read_text().split() if path.is_file() else []
    return float(parts[1]) - float(parts[0]) if len(parts) == 2 else None
import torch
figures = {
    "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
    "tests_exit_status": status, "tests_tail": (out / "gpu_tests.log").read_text().splitlines()[-3:],
    "throughput_cifar": read("throughput_cifar.json"), "throughput_imagenet": read("throughput_imagenet.json"),
    "epoch_wall_s (one epoch incl. start-up)": {f: seconds(f"epoch_{f}.s") for f in ("tensor", "image_folder")},
}
(out / "gpu_checks.json").write_text(json.dumps(figures, indent=1))
print(json.dumps(figures, indent=1))
PY
exit $status
