#!/usr/bin/env bash
# The GPU checks in one run (1-3: < 10 min on one current GPU; 4: < 10 min more); writes its figures to
# ${OUT:-benchmarks/results}/gpu_checks.json and the logs next to it.
#   1. tests of the sampler, the batched applier, the DALI and the tensor loaders on the GPU
#      (SOLO_EQUIMOD_TEST_DEVICE=cuda: applier on cuda tensors; DALI `mixed` decoding + GPU operators,
#      re-application and the parameters replayed from the one sampler)
#   2. views/s of torchvision (DataLoader), DALI (GPU) and the batched applier (GPU), CIFAR SimCLR
#      and ImageNet BYOL policies (benchmarks/dali_throughput.py; target >= 200,000 CIFAR views/s)
#   3. training throughput and the epoch time of SimCLR+EquiMod, ResNet-18, batch 512, on 50,000
#      CIFAR-size (32 px) synthetic images, data.format=tensor vs image_folder, with the fraction of
#      step time spent waiting for data (benchmarks/loader_training.py)
#   4. one full CIFAR-10-sized epoch (50,000 generated 32 px images, tensor loader) of SimCLR and
#      SimCLR+EquiMod, ResNet-18, batch 512, bf16-mixed, eager and compiled: seconds per epoch, images/s
#      and the achieved fraction of the GPU's peak bf16 FLOP/s; and the same epoch through the
#      torchvision DataLoader path (image_folder) for the ratio (benchmarks/epoch_time.py, < 10 min)
#     bash benchmarks/gpu_checks.sh          # on a GPU machine
#     bash benchmarks/gpu_checks.sh --cpu    # smoke test of the script itself on CPU, tiny sizes (~3 min)
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # this checkout's solo_equimod, whatever is installed
PY=${PYTHON:-python}
OUT=${OUT:-benchmarks/results}
mkdir -p "$OUT"
if [[ "${1:-}" == "--cpu" ]]; then
  DEVICE=cpu; WORKERS=2; TESTS="tests/augment/test_batched_applier.py -k hand_made"
  CIFAR="--batch-size 64 --limit 256 --epochs 1 --rounds 1 --tensor-images 512"; IMAGENET="--batch-size 16 --limit 32 --epochs 1 --rounds 1"
  TRAIN="--backbones tiny_cnn --batch-size 64 --synthetic 512 --steps 3 --warmup 2 --rounds 1 --threads 1 +backbone.kwargs.width=8"
  EPOCH="--backbone tiny_cnn --batch-size 64 --images 512 --warmup 2 +backbone.kwargs.width=8"; EPOCH_LIMIT=400
else
  DEVICE=cuda; WORKERS=8; TESTS="tests/augment/test_sampler.py tests/augment/test_batched_applier.py tests/data/test_dali.py tests/data/test_tensor_loader.py"
  CIFAR="--batch-size 512 --limit 8192 --epochs 1 --rounds 3 --tensor-images 50000"; IMAGENET="--batch-size 128 --limit 1024 --epochs 1 --rounds 2"
  # 50,000 / 512 = 97 steps = one epoch: 7 warm-up + 90 timed
  TRAIN="--backbones resnet18 --batch-size 512 --synthetic 50000 --steps 90 --warmup 7 --rounds 2"
  EPOCH="--backbone resnet18 --batch-size 512 --images 50000 --warmup 7"; EPOCH_LIMIT=590
  $PY -c "import torch; assert torch.cuda.is_available(), 'no CUDA device: run with --cpu for the smoke test'" || exit 1
fi

failed=()
SOLO_EQUIMOD_TEST_DEVICE=$DEVICE timeout 180 $PY -m pytest -q -p no:cacheprovider $TESTS > "$OUT/gpu_tests.log" 2>&1 \
  || failed+=(tests)
tail -3 "$OUT/gpu_tests.log"

for dataset in cifar imagenet; do
  [[ $dataset == cifar ]] && sizes=$CIFAR || sizes=$IMAGENET
  timeout 100 $PY benchmarks/dali_throughput.py --dataset $dataset --generated --device $DEVICE --workers $WORKERS $sizes \
    --json "$OUT/throughput_$dataset.json" --out "$OUT/throughput_$dataset.md" > "$OUT/throughput_$dataset.log" 2>&1 \
    || failed+=("throughput_$dataset")
  tail -12 "$OUT/throughput_$dataset.log"
done

timeout 200 $PY benchmarks/loader_training.py --device $DEVICE --workers $WORKERS $TRAIN \
  --json "$OUT/loader_training.json" > "$OUT/loader_training.log" 2>&1 || failed+=(loader_training)
tail -6 "$OUT/loader_training.log"

timeout $EPOCH_LIMIT $PY benchmarks/epoch_time.py --device $DEVICE --workers $WORKERS --precision bf16-mixed $EPOCH \
  --json "$OUT/epoch_time.json" > "$OUT/epoch_time.log" 2>&1 || failed+=(epoch_time)
grep -E "s/epoch|epoch /" "$OUT/epoch_time.log"

$PY - "$OUT" "${failed[*]:-}" <<'PY'
import json, sys
from pathlib import Path
import torch
out, failed = Path(sys.argv[1]), sys.argv[2].split()
def read(name):
    path = out / name
    return json.loads(path.read_text()) if path.is_file() else None
cifar, training = read("throughput_cifar.json"), read("loader_training.json")
views = None if cifar is None else cifar["images_per_s"]["tensor-full"] * cifar["views_per_image"]
epochs = None if training is None else {r["format"]: 50000 / r["images_per_s"] for r in training["rows"]}
figures = {
    "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
    "failed": failed, "tests_tail": (out / "gpu_tests.log").read_text().splitlines()[-3:],
    "applier_cifar_simclr_views_per_s": views, "target_200000_views_per_s_met": None if views is None else views >= 200_000,
    "throughput_cifar": cifar, "throughput_imagenet": read("throughput_imagenet.json"),
    "training": training, "epoch_s_of_50000_images (from steady steps/s)": epochs,
    "epoch_time": read("epoch_time.json"),
}
(out / "gpu_checks.json").write_text(json.dumps(figures, indent=1))
print(json.dumps({k: v for k, v in figures.items() if not k.startswith(("throughput", "training", "epoch_time"))}, indent=1))
PY
[[ ${#failed[@]} -eq 0 ]]
