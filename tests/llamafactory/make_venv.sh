#!/usr/bin/env bash
# Makes the virtualenv in which the LLaMA-Factory conformance check runs (its pins clash with
# ours: transformers <= 5.6, datasets <= 4.0, trl <= 0.24, peft 0.18). torch is not installed a
# second time: the new venv sees the torch (and its CUDA/triton wheels) of the main venv through
# a folder of symlinks named in a .pth file, placed after its own site-packages, and nothing
# else of the main venv. LLaMA-Factory's UI/serving/multimodal dependencies (gradio, av,
# torchvision, torchaudio, modelscope, fastapi, ...) are left out: the check uses its data
# loader, its templates and its SFT trainer only.
#
#   tests/llamafactory/make_venv.sh MAIN_PYTHON VENV_DIR
set -euo pipefail
main_python=${1:?usage: make_venv.sh MAIN_PYTHON VENV_DIR}
venv=${2:?usage: make_venv.sh MAIN_PYTHON VENV_DIR}

main_sp=$("$main_python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
"$main_python" -c "import torch" # the main venv must have torch (csft-data[train])
python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
lf_sp=$("$venv/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
shared="$venv/torch-from-main"
mkdir -p "$shared"
for entry in "$main_sp"/{torch,torchgen,functorch,triton,nvidia,cuda} \
  "$main_sp"/{torch,triton,nvidia_,cuda_}*.dist-info; do
  [ -e "$entry" ] && ln -sfn "$entry" "$shared/$(basename "$entry")"
done
echo "$(cd "$shared" && pwd)" >"$lf_sp/zz_torch_from_main.pth"
"$venv/bin/python" -m pip install -q --no-deps "llamafactory==0.9.5" "torchaudio==2.11.1"
"$venv/bin/python" -m pip install -q \
  "transformers==5.6.0" "datasets==4.0.0" "accelerate==1.11.0" "peft==0.18.1" "trl==0.24.0" \
  einops fire omegaconf protobuf sentencepiece tiktoken "tyro<0.9" pyyaml pandas scipy \
  matplotlib packaging pydantic safetensors numpy setuptools
"$venv/bin/python" -c "import llamafactory.data, llamafactory.train.sft.workflow" 
echo "LLaMA-Factory $("$venv/bin/python" -c 'import llamafactory; print(llamafactory.__version__)') in $venv"
