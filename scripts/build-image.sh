#!/usr/bin/env bash
# Build the mlspec runtime image from the Containerfile, then write its SBOM and audit.
# Usage: scripts/build-image.sh [--variant cpu|torch] [--tag TAG] [--push]
#        scripts/build-image.sh --from-lock [--variant cpu|torch]
#   --variant    cpu (default) or torch: the lock file the image installs (docs/image.md).
#   --tag        default ghcr.io/mlspec/mlspec-runtime:VERSION (VERSION-torch for torch).
#   --push       push the tag and print the registry digest to pin (IMAGE@sha256:...).
#   --from-lock  no engine: the SBOM and audit of what the image would install (the lock).
# Engine: the first of docker, podman, buildah that works (a daemon that answers), not merely
# one on PATH; none: exit 2. Writes build/image/VARIANT/: requirements.txt (the image's
# `pip list --format=freeze`, or the lock), sbom.cdx.json (CycloneDX, cyclonedx-py),
# audit.json (pip-audit against the PyPI vulnerability service) and, after a build, digest.txt.
# Exit codes: 0 done (known vulnerabilities are listed, not fatal), 1 a step failed or the
# audit is incomplete (a package pip-audit could not look up), 2 usage or no engine.
set -euo pipefail
here="${BASH_SOURCE[0]%/*}"
[ "$here" = "${BASH_SOURCE[0]}" ] && here=.
cd "$here/.."

usage() {
  echo "usage: scripts/build-image.sh [--variant cpu|torch] [--tag TAG] [--push] | --from-lock" >&2
  exit 2
}
variant=cpu tag="" push=0 from_lock=0
while [ $# -gt 0 ]; do
  case "$1" in
    --variant) [ $# -ge 2 ] || usage; variant="$2"; shift ;;
    --tag) [ $# -ge 2 ] || usage; tag="$2"; shift ;;
    --push) push=1 ;;
    --from-lock) from_lock=1 ;;
    -h|--help) usage ;;
    *) usage ;;
  esac
  shift
done
case "$variant" in cpu|torch) ;; *) echo "build-image.sh: --variant cpu or torch" >&2; exit 2 ;; esac

engine=""
if [ "$from_lock" = 0 ]; then
  # Builtins only up to here: the check must work whatever PATH holds.
  for candidate in docker podman buildah; do
    command -v "$candidate" >/dev/null 2>&1 || continue
    case "$candidate" in
      buildah) probe=(buildah info) ;;
      *) probe=("$candidate" info) ;;
    esac
    if "${probe[@]}" >/dev/null 2>&1; then engine="$candidate"; break; fi
  done
  if [ -z "$engine" ]; then
    echo "build-image.sh: no working container engine: tried docker (docker info), podman" \
         "(podman info) and buildah (buildah info); install or start one of them, or run" \
         "scripts/build-image.sh --from-lock for the SBOM and audit of the lock file" >&2
    exit 2
  fi
fi

tool() {  # the dev extra's tools: on PATH, or beside this Python
  local name="$1"
  if command -v "$name" >/dev/null 2>&1; then command -v "$name"; return; fi
  for dir in .venv/bin "$(dirname "$(command -v "${PYTHON:-python3}")")"; do
    if [ -x "$dir/$name" ]; then echo "$dir/$name"; return; fi
  done
  echo "build-image.sh: $name not found (pip install -e '.[dev]')" >&2
  exit 1
}

version="$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' mlspec/__init__.py)"
lock="requirements/runtime-$variant.lock"
out="build/image/$variant"
mkdir -p "$out"

if [ "$from_lock" = 1 ]; then
  cp "$lock" "$out/requirements.txt"
else
  if [ -z "$tag" ]; then
    tag="ghcr.io/mlspec/mlspec-runtime:$version"
    [ "$variant" = torch ] && tag="$tag-torch"
  fi
  source_url="$(git remote get-url origin 2>/dev/null || echo https://github.com/example/mlspec)"
  build_args=(--build-arg "VARIANT=$variant" --build-arg "VERSION=$version"
              --build-arg "SOURCE=$source_url")
  echo "build-image.sh: building $tag with $engine ($lock)" >&2
  case "$engine" in
    buildah) buildah bud -f Containerfile "${build_args[@]}" --iidfile "$out/iid" -t "$tag" . ;;
    *) "$engine" build -f Containerfile "${build_args[@]}" --iidfile "$out/iid" -t "$tag" . ;;
  esac
  image_id="$(cat "$out/iid")"
  echo "$tag $image_id" > "$out/digest.txt"
  echo "image: $tag"
  echo "image id: $image_id"
  if [ "$push" = 1 ]; then
    case "$engine" in
      docker)
        docker push "$tag"
        repo_digest="$(docker inspect --format '{{index .RepoDigests 0}}' "$tag")" ;;
      *)
        "$engine" push --digestfile "$out/repo-digest" "$tag"
        repo_digest="${tag%:*}@$(cat "$out/repo-digest")" ;;
    esac
    echo "$repo_digest" >> "$out/digest.txt"
    echo "pushed; pin it as serving.image: $repo_digest"
  fi
  # The image's Python environment as it is (not as the lock says it should be).
  freeze=(python -m pip list --format=freeze --exclude-editable)
  case "$engine" in
    buildah)
      ctr="$(buildah from "$tag")"
      buildah run "$ctr" -- "${freeze[@]}" > "$out/requirements.txt"
      buildah rm "$ctr" >/dev/null ;;
    *) "$engine" run --rm --entrypoint "${freeze[0]}" "$tag" "${freeze[@]:1}" \
         > "$out/requirements.txt" ;;
  esac
fi

# mlspec itself is the SBOM's root component (from pyproject.toml), not a PyPI dependency.
grep -v -i '^mlspec==' "$out/requirements.txt" > "$out/requirements.audit.txt" || true
"$(tool cyclonedx-py)" requirements "$out/requirements.audit.txt" --pyproject pyproject.toml \
  --mc-type application --of JSON --output-reproducible -o "$out/sbom.cdx.json"
# Exact pins, no resolution: the lock is hashed (--require-hashes); a freeze is not (--no-deps).
audit_opts=(--disable-pip --progress-spinner off -f json -o "$out/audit.json")
if [ "$from_lock" = 1 ]; then audit_opts+=(--require-hashes); else audit_opts+=(--no-deps); fi
audit_rc=0
"$(tool pip-audit)" -r "$out/requirements.audit.txt" "${audit_opts[@]}" || audit_rc=$?
# pip-audit exits 1 when it finds vulnerabilities; anything else is a failure of the audit.
[ "$audit_rc" -le 1 ] || { echo "build-image.sh: pip-audit failed ($audit_rc)" >&2; exit 1; }
# The summary; exit 1 when a package could not be audited (the audit is then incomplete).
"${PYTHON:-python3}" - "$out/sbom.cdx.json" "$out/audit.json" <<'EOF'
import json
import sys

sbom = json.load(open(sys.argv[1]))
deps = json.load(open(sys.argv[2]))["dependencies"]
vulns = [(d["name"], d["version"], v["id"]) for d in deps for v in d.get("vulns", [])]
skipped = {d["name"]: d["skip_reason"] for d in deps if "skip_reason" in d}
print(f"sbom: {sys.argv[1]}: {len(sbom.get('components', []))} components")
print(f"audit: {sys.argv[2]}: {len(deps) - len(skipped)} of {len(deps)} packages audited, "
      f"{len(vulns)} known vulnerabilities")
for name, version, vid in vulns:
    print(f"  {name}=={version}: {vid}")
if skipped:
    print(f"build-image.sh: the audit is incomplete: {len(skipped)} packages not audited, e.g. "
          f"{next(iter(skipped.values()))}", file=sys.stderr)
    sys.exit(1)
EOF
