#!/bin/bash
# Same results from two versions of the code (issue 22's "behaviour unchanged"): the same seeded tiny runs —
# yolo_kemo with its detector stage, opencv_vgg19, resize_resnet18 — from the checkout in $1, into the folder $2;
# prints each run's test metrics and a digest of each crop cache's JPEGs (by file name, so a cache folder whose key
# differs still compares). One thread each, so the figures are comparable.
#   bash benchmarks/same_results.sh CHECKOUT OUT_DIR   (PYTHON=... the interpreter; default CHECKOUT/.venv/bin/python)
set -e
code=$(realpath "$1"); out=$2; py=${PYTHON:-$code/.venv/bin/python}
rm -rf "$out"; mkdir -p "$out"
tiny="data.source.images_per_class=16 data.source.n_subjects=6 data.source.long_side=320 data.source.workers=1
 data.selection.n_per_class=10 data.selection.n_detector=28 data.selection.workers=2 data.crop_workers=1
 data.num_workers=0 data.batch_size=8 data.image_size=32 preprocess.size=64 logger=csv +trainer.enable_progress_bar=false
 data.detector.image_size=64 data.detector.batch_size=4 data.detector.epochs=2 trainer.max_epochs=2"
cd "$code"
for exp in "yolo_kemo model.net.width=8 preprocess.conf=0.0" "opencv_vgg19" "resize_resnet18"; do
  name=${exp%% *}
  OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONPATH=$code $py -m kemotion.train +experiment=$exp $tiny \
    paths.root_dir=$out hydra.run.dir=$out/runs/$name > $out/$name.log 2>&1
  $py -c "import json,sys; r=json.load(open('$out/runs/$name/result.json')); print('$name', {k: round(v, 6) for k, v in sorted(r['metrics'].items()) if k.startswith('test/')})"
done
for folder in "$out"/.cache/crops/*/*/; do echo "crops $(basename "$folder"): $(cd "$folder" && find . -name "*.jpg" -print0 | sort -z | xargs -0 md5sum | md5sum | cut -c1-12) ($(find "$folder" -name "*.jpg" | wc -l) files)"; done
