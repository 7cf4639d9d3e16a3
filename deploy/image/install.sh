#!/bin/sh
# Stage 2 of the Dockerfile: install the wheel found in DIST (with the otel extra) into a
# virtual environment at PREFIX, add the health check command, and check that it runs.
# Usage: install.sh PREFIX DIST
set -eu
prefix=$1
dist=$2
here=$(cd "$(dirname "$0")" && pwd)
wheel=$(ls "$dist"/falsework-*.whl)
python3 -m venv "$prefix"
"$prefix/bin/python" -m pip install --no-cache-dir --quiet --upgrade pip
"$prefix/bin/python" -m pip install --no-cache-dir --quiet "falsework[otel] @ file://$wheel"
{
    echo "#!$prefix/bin/python"
    cat "$here/healthcheck.py"
} > "$prefix/bin/falsework-healthcheck"
chmod 0755 "$prefix/bin/falsework-healthcheck"
"$prefix/bin/falsework" --help > /dev/null
