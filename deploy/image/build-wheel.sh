#!/bin/sh
# Stage 1 of the Dockerfile: build Falsework's wheel from the sources in SRC into DIST.
# Usage: build-wheel.sh SRC DIST
set -eu
src=$1
dist=$2
mkdir -p "$dist"
python3 -m pip wheel --no-cache-dir --no-deps --quiet --wheel-dir "$dist" "$src"
ls "$dist"/falsework-*.whl
