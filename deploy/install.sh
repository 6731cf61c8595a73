#!/bin/sh
# Install seedrag into a virtualenv with the CPU build of torch, never the CUDA one.
#
#   deploy/install.sh VENV [EXTRAS] [--editable]
#
# `make install` (editable, EXTRAS=dev), the Dockerfile (EXTRAS=discord) and CI (deploy/check.sh,
# in a clean venv) all install through this script, so they install the same way.
# Environment: PYTHON (default python3), TORCH_INDEX (default https://download.pytorch.org/whl/cpu).
set -eu
cd "$(dirname "$0")/.."
venv=${1:?usage: deploy/install.sh VENV [EXTRAS] [--editable]}
extras=${2:-discord}
editable=""
if [ "${3:-}" = "--editable" ]; then editable="-e"; fi
python=${PYTHON:-python3}
torch_index=${TORCH_INDEX:-https://download.pytorch.org/whl/cpu}
# The torch pin lives in one place, pyproject.toml.
torch_spec=$(sed -n 's/^ *"\(torch==[^"]*\)".*/\1/p' pyproject.toml)

[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
pip="$venv/bin/python -m pip"
$pip install -q --upgrade pip
# torch alone, from the CPU index: PyPI's build of the same version is the CUDA one (about 17
# nvidia-* packages, several GB). --no-deps: torch's own dependencies come from the normal index
# with the project below. If the CPU index can't be reached, pip's own configuration (a mirror,
# --find-links) may still provide the CPU wheel; if nothing does, this fails rather than fall
# back to PyPI's CUDA build.
$pip install -q --no-deps --retries 1 --index-url "$torch_index" "$torch_spec"
$pip install -q $editable ".[$extras]"
"$venv/bin/python" deploy/check_cpu_only.py
