#!/usr/bin/env bash
# Regenerate the runtime image's lock files from pyproject.toml's extras with uv pip compile:
# exact versions and sha256 hashes for Python 3.11 on Linux x86_64 (the Containerfile's base).
#   requirements/runtime-cpu.lock    mlspec's dependencies + extras runtime,remote,kfp
#   requirements/runtime-torch.lock  the same + torch, a CPU build (never the CUDA one)
#   requirements/build.lock          the build backend ([build-system] requires) for the wheel
# kfp is in the image: KFP's lightweight components run `python3 -m kfp.dsl.executor_main`
# in their base image, the runtime image (mlspec compiles them with install_kfp_package=False).
# Usage: scripts/lock.sh [--check] [--pyproject FILE] [--out DIR]
#   --check      compile into a temporary folder and compare: exit 1 with a diff when a lock is
#                out of date with pyproject.toml, 0 when both are current.
#   --pyproject  compile from another pyproject.toml (the tests use a modified copy).
# The current lock is the compile's starting point (uv keeps its pins when they still satisfy
# pyproject.toml), so a release on PyPI does not make a lock stale; a changed requirement does.
# UV (default: uv on PATH), PYPI_INDEX (default https://pypi.org/simple) and TORCH_FIND_LINKS
# (where the CPU torch wheel is found: /opt/wheels when it holds one, else PyTorch's CPU index
# page https://download.pytorch.org/whl/cpu/torch/) can be overridden from the environment.
set -euo pipefail
cd "$(dirname "$0")/.."

check=0
pyproject=pyproject.toml
out=requirements
while [ $# -gt 0 ]; do
  case "$1" in
    --check) check=1 ;;
    --pyproject) pyproject="$2"; shift ;;
    --out) out="$2"; shift ;;
    *) echo "usage: scripts/lock.sh [--check] [--pyproject FILE] [--out DIR]" >&2; exit 2 ;;
  esac
  shift
done

uv="${UV:-uv}"
if ! command -v "$uv" >/dev/null 2>&1; then
  echo "lock.sh: uv not found (pip install 'uv>=0.13', part of the dev extra)" >&2
  exit 2
fi
uv="$(command -v "$uv")"
case "$uv" in /*) ;; *) uv="$PWD/$uv" ;; esac  # uv_compile runs in another folder
index="${PYPI_INDEX:-https://pypi.org/simple}"
torch_links="${TORCH_FIND_LINKS:-}"
if [ -z "$torch_links" ]; then
  if compgen -G "/opt/wheels/torch-2.13.0+cpu-*.whl" >/dev/null; then
    torch_links=/opt/wheels
  else
    torch_links=https://download.pytorch.org/whl/cpu/torch/
  fi
fi
# The torch CPU build: its local version (+cpu) keeps PyPI's CUDA build (nvidia-*) out.
TORCH_PIN="torch==2.13.0+cpu"

[ "$(basename "$pyproject")" = pyproject.toml ] || { echo "lock.sh: $pyproject: not a pyproject.toml" >&2; exit 2; }
# uv names the file in each "# via" line as given: compile from its folder, as "pyproject.toml".
project_dir="$(cd "$(dirname "$pyproject")" && pwd)"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
target="$out"
if [ "$check" = 1 ]; then
  target="$(mktemp -d)"
  trap 'rm -rf "$target"' EXIT
  # Start from the committed locks, as a regeneration would.
  cp "$out"/*.lock "$target"/ 2>/dev/null || true
fi
mkdir -p "$target"

uv_compile() {  # uv_compile DIR INPUT OUTPUT [OPTIONS...], run in DIR
  local dir="$1" input="$2" output="$3"; shift 3
  (cd "$dir" && "$uv" pip compile "$input" "$@" \
    --quiet --generate-hashes --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
    --index-url "$index" --no-emit-index-url --no-emit-find-links \
    --custom-compile-command "bash scripts/lock.sh" --output-file "$output")
}

extras() { for extra in "$@"; do printf -- '--extra\n%s\n' "$extra"; done; }

mapfile -t cpu_extras < <(extras runtime remote kfp)
uv_compile "$project_dir" pyproject.toml "$target/runtime-cpu.lock" "${cpu_extras[@]}"

scratch="$(mktemp -d)"
echo "$TORCH_PIN" > "$scratch/torch-pin.txt"
mapfile -t torch_extras < <(extras runtime remote kfp torch)
uv_compile "$project_dir" pyproject.toml "$target/runtime-torch.lock" "${torch_extras[@]}" \
  --find-links "$torch_links" --constraints "$scratch/torch-pin.txt"

# The builder stage builds mlspec's wheel without build isolation, from these hashed pins of
# pyproject.toml's [build-system] requires.
"${PYTHON:-python3}" -c '
import sys, tomllib
print("\n".join(tomllib.load(open(sys.argv[1], "rb"))["build-system"]["requires"]))
' "$project_dir/pyproject.toml" > "$scratch/build-system-requires.txt"
uv_compile "$scratch" build-system-requires.txt "$target/build.lock"
constraints="$scratch/torch-pin.txt"

# The constraints file is a temporary path: keep it out of the lock's header and annotations.
sed -i -e "s#$constraints#torch pin in scripts/lock.sh#g" "$target/runtime-torch.lock"
rm -rf "$scratch"

# Say where torch comes from, below uv's header (uv keeps only pins from an existing lock).
sed -i -e '2a\
# torch is the CPU build from PyTorch'"'"'s index, https://download.pytorch.org/whl/cpu (PyPI'"'"'s\
# torch is the CUDA one): install with --find-links https://download.pytorch.org/whl/cpu/torch/\
# (the Containerfile does for VARIANT=torch). The hash is of the wheel lock.sh found\
# (TORCH_FIND_LINKS); regenerate where that index is reachable to lock its own wheel.' \
  "$target/runtime-torch.lock"

for lock in "$target"/runtime-cpu.lock "$target"/runtime-torch.lock; do
  if grep -n -i -E '^(nvidia-|cuda-|triton==)' "$lock"; then
    echo "lock.sh: $lock holds a CUDA package (above); the torch pin must be a CPU build" >&2
    exit 1
  fi
  if ! grep -q '^mlflow==3.17.2 ' "$lock"; then
    echo "lock.sh: $lock does not pin mlflow==3.17.2" >&2
    exit 1
  fi
done

if [ "$check" = 1 ]; then
  stale=0
  for name in runtime-cpu runtime-torch build; do
    if ! diff -u "$out/$name.lock" "$target/$name.lock"; then
      echo "lock.sh: $out/$name.lock is out of date with $pyproject; run: bash scripts/lock.sh" >&2
      stale=1
    fi
  done
  exit "$stale"
fi
echo "lock.sh: wrote runtime-cpu.lock, runtime-torch.lock and build.lock in $target"
