#!/usr/bin/env bash
# Installs the Debian packages difflab needs (libraries and offline default data sources).
# As root it runs apt-get; otherwise it prints the exact command and stops.
set -euo pipefail

PACKAGES=(
  libusb-1.0-0   # open3d (pointcloud) loads it at import
  libgl1         # open3d / matplotlib offscreen rendering
  libsndfile1    # soundfile (audio)
  bible-kjv      # text: the King James Bible, an offline default corpus
  build-essential python3-dev   # pesq (audio metric) builds a C extension from source
  espeak-ng flite               # audio: speech synthesisers for the clean training speech
  wamerican                     # audio: word list used when the KJV text is missing
  sonic-pi-samples              # audio: real recorded noises and ambiences
  asterisk-core-sounds-en-g722  # audio: real recorded speech (16 kHz) for the evaluation set
  libcgal-demo                  # pointcloud: real meshes and scans (bunny, armadillo, dragon, ...)
  libvulkan1 mesa-vulkan-drivers  # pointcloud: software Vulkan device for Open3D's headless renderer
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "system packages: all present (${PACKAGES[*]})"
  exit 0
fi

cmd="apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "difflab needs these Debian packages: ${missing[*]}" >&2
  echo "run as root:  sudo sh -c '$cmd'" >&2
  exit 1
fi
echo "installing system packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
