#!/usr/bin/env bash
# Packs release archives and renders the krew manifest with their real sha256.
#
#   scripts/package.sh VERSION OUT_DIR OS_ARCH=BINARY...
#   scripts/package.sh v0.1.0 dist \
#     linux_amd64=target/x86_64-unknown-linux-musl/release/kubectl-devenv \
#     windows_amd64=target/x86_64-pc-windows-msvc/release/kubectl-devenv.exe ...
#
# For each OS_ARCH it writes OUT_DIR/kubectl-devenv_VERSION_OS_ARCH.tar.gz (.zip for
# windows) holding the binary and LICENSE at the top level, then OUT_DIR/devenv.yaml
# (krew/devenv.yaml rendered) and OUT_DIR/checksums.txt. The manifest needs every
# platform it lists; a missing one is an error. RELEASE_URL overrides where the
# manifest says the archives are downloaded from. Needs GNU tar, gzip and zip (Linux).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

die() {
  echo "error: $*" >&2
  exit 2
}

[[ $# -ge 3 ]] || die "usage: $0 VERSION OUT_DIR OS_ARCH=BINARY... (see the header of $0)"
version=$1
out=$2
shift 2
[[ $version =~ ^v[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$ ]] ||
  die "version \"$version\" is not semver with a leading v (krew requires e.g. v0.1.0)"
release_url=${RELEASE_URL:-https://github.com/kubectl-devenv/kubectl-devenv/releases/download/$version}

sha256() {
  if command -v sha256sum >/dev/null; then
    sha256sum "$1" | cut -d' ' -f1
  else
    shasum -a 256 "$1" | cut -d' ' -f1
  fi
}

mkdir -p "$out"
out=$(cd "$out" && pwd)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

# Fixed owner, mode and time (the last commit's; zip cannot store dates before 1980),
# so the same binary always gives the same sha256.
epoch=${SOURCE_DATE_EPOCH:-$(git -C "$root" log -1 --format=%ct 2>/dev/null || echo 315619200)}
substitutions=(-e "s|@VERSION@|$version|g" -e "s|@RELEASE_URL@|$release_url|g")
: >"$out/checksums.txt"
for spec in "$@"; do
  platform=${spec%%=*}
  binary=${spec#*=}
  [[ $platform =~ ^(linux|darwin|windows)_(amd64|arm64)$ ]] ||
    die "unknown platform \"$platform\" in \"$spec\" (expected OS_ARCH=BINARY, e.g. linux_amd64=path)"
  [[ -f $binary ]] || die "no binary at \"$binary\" for $platform"

  dir="$stage/$platform"
  mkdir -p "$dir"
  name=kubectl-devenv
  [[ $platform == windows_* ]] && name=kubectl-devenv.exe
  install -m 0755 "$binary" "$dir/$name"
  install -m 0644 "$root/LICENSE" "$dir/LICENSE"
  touch -d "@$epoch" "$dir/$name" "$dir/LICENSE"

  if [[ $platform == windows_* ]]; then
    archive="kubectl-devenv_${version}_${platform}.zip"
    rm -f "$out/$archive"
    (cd "$dir" && zip -q -X "$out/$archive" "$name" LICENSE)
  else
    archive="kubectl-devenv_${version}_${platform}.tar.gz"
    tar -C "$dir" --owner=0 --group=0 --numeric-owner --sort=name -cf - "$name" LICENSE |
      gzip -n >"$out/$archive"
  fi
  sum=$(sha256 "$out/$archive")
  echo "$sum  $archive" >>"$out/checksums.txt"
  key=$(tr '[:lower:]' '[:upper:]' <<<"$platform")
  substitutions+=(-e "s|@SHA256_${key}@|$sum|g")
  echo "packed $archive ($sum)" >&2
done

# The template's leading comment describes the placeholders; the rendered file starts at apiVersion.
sed -n '/^apiVersion:/,$p' "$root/krew/devenv.yaml" | sed "${substitutions[@]}" >"$out/devenv.yaml"
if missing=$(grep -o '@[A-Z0-9_]*@' "$out/devenv.yaml"); then
  die "the manifest still has placeholders (no archive given for them): $(echo "$missing" | sort -u | tr '\n' ' ')"
fi
echo "rendered $out/devenv.yaml" >&2
