#!/usr/bin/env bash
# Prepare the training data files (document any change in benchmarks/RESULTS.md).
#   scripts/train_prepare.sh
# Photographs: Debian wallpaper packages, downloaded (not installed) and unpacked under
# work_dirs/bg; mate-backgrounds is reserved for evaluation.  Video: the Big Buck Bunny
# film and excerpt from ../shared/data; cockatoo.mp4 and bikes.mp4 are held out.
set -euo pipefail
data=${DATA:-../shared/data}
mkdir -p work_dirs/bg/debs work_dirs/data work_dirs/gpu
(cd work_dirs/bg/debs && apt-get download gnome-backgrounds ukui-wallpapers lomiri-wallpapers-20.04 plasma-workspace-wallpapers)
for deb in work_dirs/bg/debs/*.deb; do dpkg-deb -x "$deb" work_dirs/bg/root; done
# CPU file: more video windows (48 over the film, from the seventh weights on; 16 before),
# JPEG quality 97 (the default).
python -m ui2c.training.prepare -y -o work_dirs/data/train.zip --video "$data/bbb.mp4:48" \
    --video "$data/bigbuckbunny.mp4:2" --photos work_dirs/bg/root/usr/share --max-photos 80
# GPU file: smaller, so it travels to a GPU machine beside the weights (≤ 64 MiB with the tree).
python -m ui2c.training.prepare -y -o work_dirs/gpu/train.zip --video "$data/bbb.mp4:11" \
    --video "$data/bigbuckbunny.mp4:2" --photos work_dirs/bg/root/usr/share --max-photos 80 --quality 90
