#!/usr/bin/env bash
# Builds the real node's container images from Debian packages, cached by
# recipe, and pushes them to a registry over plain HTTP.
#
#   images.sh build [NAME...]           # into $TESTBED_CACHE/images; needs no registry
#   images.sh push REGISTRY [NAME...]   # prints TESTBED_IMAGE_<NAME>=REGISTRY/testbed/<name>:<tag>
#
# Docker Hub and registry.k8s.io are out of reach, so each image is a stand-in
# with the official image's contract (UID, data path, port, credential env,
# first-start initialisation). One directory per image under images/, with a
# `recipe` file; images/README.md describes the recipe. Without NAMEs, every
# recipe is built or pushed. Logs go to stderr; a build's own output goes to
# $TESTBED_CACHE/images/logs/<name>.log.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/testbed/lib.sh
source "$here/lib.sh"

self=$here/images.sh
recipe_functions=()
recipes=$here/images
cache=$TESTBED_CACHE/images
suite=bookworm
# Lean images: no documentation or translations (copyright files stay).
dpkg_excludes=('/usr/share/doc/*' '/usr/share/man/*' '/usr/share/info/*' '/usr/share/locale/*' '/usr/share/lintian/*')
dpkg_includes=('/usr/share/doc/*/copyright' /usr/share/locale/locale.alias)

# require TOOL PACKAGE: fail clearly when a build or push tool is missing.
require() {
  command -v "$1" >/dev/null || die "images: $1 not found (install the Debian package $2)"
}

# all_names: every image that has a recipe.
all_names() {
  local recipe
  for recipe in "$recipes"/*/recipe; do
    basename "$(dirname "$recipe")"
  done
}

# load NAME: reset the recipe variables, then source the recipe.
load() {
  name=$1 recipe_dir=$recipes/$1
  [[ -f $recipe_dir/recipe ]] || die "images: no recipe $recipe_dir/recipe"
  tag='' from=debian account='' user='' workdir='' stop_signal='' key_extra=''
  packages=() excludes=() dirs=() entrypoint=() cmd=() ports=()
  env=(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin)
  # The recipe's functions (hooks and their helpers) are part of its keys.
  ((${#recipe_functions[@]} == 0)) || unset -f "${recipe_functions[@]}"
  local before
  before=$(declare -F)
  # shellcheck source=/dev/null
  source "$recipe_dir/recipe"
  mapfile -t recipe_functions < <(declare -F | grep -vxFf <(echo "$before") | cut -d' ' -f3)
  [[ -n $tag ]] || die "images: $name: the recipe sets no tag"
  [[ $from == debian || $from == scratch ]] || die "images: $name: from=$from (debian or scratch)"
}

sha256() { sha256sum "$@" | cut -d' ' -f1; }

# rootfs_key: what the Debian layer depends on. Changes to the entrypoint,
# files or image config do not re-run mmdebstrap.
rootfs_key() {
  {
    declare -p suite dpkg_excludes dpkg_includes packages excludes account
    declare -f build_rootfs hook_essential add_account hook_customize "${recipe_functions[@]}"
  } | sha256
}

# image_key: everything the finished image depends on.
image_key() {
  {
    [[ $from == scratch ]] || rootfs_key
    # Modes normalised as in the top layer, so a checkout's umask changes nothing.
    tar -C "$recipe_dir" -cf - --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 --mode=u=rwX,go=rX .
    sha256 "$self"
    printf '%s\n' "$key_extra"
  } | sha256 | cut -c1-16
}

# --- the Debian layer ---------------------------------------------------------

# build_rootfs OUT_DIR: mmdebstrap's rootfs as a gzip layer, OUT_DIR/layer.tar.gz
# plus its uncompressed digest (diff_id) and size.
build_rootfs() {
  local out=$1 opts=() path
  for path in "${dpkg_excludes[@]}" "${excludes[@]}"; do opts+=("--dpkgopt=path-exclude=$path"); done
  for path in "${dpkg_includes[@]}"; do opts+=("--dpkgopt=path-include=$path"); done
  # essential, not minbase: no apt in the image. The hooks call back into this
  # script (mmdebstrap expands $1, the rootfs); --skip=cleanup/run keeps what
  # the packages put in /run.
  # shellcheck disable=SC2016
  TMPDIR=$work TESTBED_IMAGE_NAME=$name mmdebstrap --variant=essential --mode=root --format=tar \
    --include="${packages[*]}" "${opts[@]}" --skip=cleanup/run \
    --essential-hook='"$TESTBED_IMAGE_SELF" _hook essential "$1"' \
    --customize-hook='"$TESTBED_IMAGE_SELF" _hook customize "$1"' \
    "$suite" "$work/rootfs.tar"
  sha256 "$work/rootfs.tar" >"$out/diff_id"
  stat -c %s "$work/rootfs.tar" >"$out/size"
  # -1: a third of -6's CPU for a layer 10% larger, which a local registry
  # does not notice.
  gzip -1 -n <"$work/rootfs.tar" >"$out/layer.tar.gz"
  rm -f "$work/rootfs.tar"
}

# hook_essential ROOT: before the packages install: the account, then the
# recipe's essential().
hook_essential() {
  local root=$1
  if [[ -n $account ]]; then
    add_account "$root"
  fi
  if declare -F essential >/dev/null; then essential "$root"; fi
}

# add_account ROOT: the account with the official image's IDs, created before
# the packages' own `adduser --system`, which then finds it and keeps its IDs.
# An existing account (www-data) is renumbered.
add_account() {
  local root=$1 account_name uid gid home shell
  IFS=: read -r account_name uid gid home shell <<<"$account"
  if grep -q "^$account_name:" "$root/etc/group"; then
    sed -i "s/^$account_name:x:[0-9]*:/$account_name:x:$gid:/" "$root/etc/group"
  else
    if grep -q "^[^:]*:[^:]*:$gid:" "$root/etc/group"; then die "images: $name: gid $gid is taken"; fi
    echo "$account_name:x:$gid:" >>"$root/etc/group"
    [[ ! -f $root/etc/gshadow ]] || echo "$account_name:!::" >>"$root/etc/gshadow"
  fi
  if grep -q "^$account_name:" "$root/etc/passwd"; then
    sed -i "s/^$account_name:x:[0-9]*:[0-9]*:/$account_name:x:$uid:$gid:/" "$root/etc/passwd"
  else
    if grep -q "^[^:]*:[^:]*:$uid:" "$root/etc/passwd"; then die "images: $name: uid $uid is taken"; fi
    echo "$account_name:x:$uid:$gid::$home:${shell:-/usr/sbin/nologin}" >>"$root/etc/passwd"
    [[ ! -f $root/etc/shadow ]] || echo "$account_name:*:19000:0:99999:7:::" >>"$root/etc/shadow"
  fi
}

# hook_customize ROOT: after the packages install. mmdebstrap copies the
# host's resolver and hostname in; a container gets its own from the runtime.
hook_customize() {
  local root=$1
  : >"$root/etc/resolv.conf"
  : >"$root/etc/hostname"
  rm -f "$root/run/adduser"
  # Plain `ctr run` or chroot gives no /etc/hosts; some tools want localhost.
  printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"
  if declare -F customize >/dev/null; then customize "$root"; fi
}

# --- the top layer and the OCI layout ----------------------------------------

# build_top STAGE: the recipe's files/ (owned by root), its dirs and whatever
# its stage() generates.
build_top() {
  local stage=$1 spec path uid gid mode
  chmod 0755 "$stage"
  if [[ -d $recipe_dir/files ]]; then
    cp -a "$recipe_dir/files/." "$stage/"
    chown -R 0:0 "$stage"
    chmod -R u=rwX,go=rX "$stage"
  fi
  for spec in "${dirs[@]}"; do
    IFS=: read -r path uid gid mode <<<"$spec"
    install -d -o "$uid" -g "$gid" -m "$mode" "$stage$path"
  done
  if declare -F stage >/dev/null; then stage "$stage"; fi
  # A directory here would hide the Debian layer's symlink (merged /usr).
  if [[ $from == debian ]]; then
    for path in bin sbin lib lib32 lib64 libx32 var/run var/lock; do
      [[ ! -e $stage/$path ]] || die "images: $name: /$path is a symlink in Debian; use the real path"
    done
  fi
}

# json_list ITEM...: a JSON array of strings.
json_list() { jq -cn '$ARGS.positional' --args "$@"; }

# add_blob LAYOUT FILE TYPE: links (or copies) FILE into the layout, prints its descriptor.
add_blob() {
  local layout=$1 file=$2 type=$3 digest size
  digest=$(sha256 "$file")
  size=$(stat -c %s "$file")
  ln -f "$file" "$layout/blobs/sha256/$digest" 2>/dev/null || cp "$file" "$layout/blobs/sha256/$digest"
  jq -cn --arg type "$type" --arg digest "sha256:$digest" --argjson size "$size" \
    '{mediaType: $type, digest: $digest, size: $size}'
}

# write_layout LAYOUT KEY LAYER_GZ:DIFF_ID...: config, manifest and index by
# hand, the way skopeo and containerd expect an OCI image layout.
write_layout() {
  local layout=$1 key=$2 spec layers=() diff_ids=() config manifest
  shift 2
  mkdir -p "$layout/blobs/sha256"
  echo '{"imageLayoutVersion":"1.0.0"}' >"$layout/oci-layout"
  for spec in "$@"; do
    layers+=("$(add_blob "$layout" "${spec%%:*}" application/vnd.oci.image.layer.v1.tar+gzip)")
    diff_ids+=("sha256:${spec#*:}")
  done
  jq -n --arg user "$user" --arg workdir "$workdir" --arg stop "$stop_signal" \
    --arg source "kubectl-devenv tests/testbed/images/$name" --arg key "$key" \
    --argjson env "$(json_list "${env[@]}")" --argjson entrypoint "$(json_list "${entrypoint[@]}")" \
    --argjson cmd "$(json_list "${cmd[@]}")" --argjson ports "$(json_list "${ports[@]}")" \
    --argjson diff_ids "$(json_list "${diff_ids[@]}")" \
    '{architecture: "amd64", os: "linux",
      config: ({User: $user, Env: $env, Entrypoint: $entrypoint, Cmd: $cmd, WorkingDir: $workdir,
                ExposedPorts: ($ports | map({(.): {}}) | add), StopSignal: $stop,
                Labels: {"org.opencontainers.image.source": $source, "devenv.test/recipe": $key}}
               | with_entries(select(.value != "" and .value != [] and .value != null))),
      rootfs: {type: "layers", diff_ids: $diff_ids}}' >"$work/config.json"
  config=$(add_blob "$layout" "$work/config.json" application/vnd.oci.image.config.v1+json)
  jq -n --argjson config "$config" --argjson layers "$(printf '%s\n' "${layers[@]}" | jq -cs .)" \
    '{schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json", config: $config, layers: $layers}' \
    >"$work/manifest.json"
  manifest=$(add_blob "$layout" "$work/manifest.json" application/vnd.oci.image.manifest.v1+json)
  jq -n --argjson manifest "$manifest" --arg tag "$tag" \
    '{schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json",
      manifests: [$manifest + {platform: {architecture: "amd64", os: "linux"},
                               annotations: {"org.opencontainers.image.ref.name": $tag}}]}' >"$layout/index.json"
}

# mib BYTES: a size for the log.
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB\n", b / 1048576 }'; }

# build_image NAME: run in a process of its own (see cmd_build), output to its log.
build_image() {
  load "$1"
  local key layout rootfs rkey layers=() started=$SECONDS unpacked=0
  key=$(image_key)
  layout=$cache/oci/$name/$key
  # Work on tmpfs when there is one: dpkg's many small writes take twice as long on disk.
  work=$(mktemp -d "${TESTBED_IMAGE_TMP:-$([[ -w /dev/shm ]] && echo /dev/shm || echo "${TMPDIR:-/tmp}")}/testbed-image.XXXXXX")
  # --one-file-system: never into what a killed mmdebstrap left mounted.
  trap 'rm -rf --one-file-system "$work"' EXIT
  trap 'exit 143' TERM INT
  if [[ $from == debian ]]; then
    rkey=$(rootfs_key | cut -c1-16)
    rootfs=$cache/rootfs/$name/$rkey
    if [[ -f $rootfs/diff_id ]]; then
      echo "rootfs $rkey: cached in $rootfs"
    else
      echo "rootfs $rkey: mmdebstrap --include=${packages[*]}"
      local tmp=$cache/rootfs/.$name.tmp
      rm -rf "$tmp" && mkdir -p "$tmp"
      build_rootfs "$tmp"
      # Only the current rootfs is kept.
      rm -rf "$cache/rootfs/$name" && mkdir -p "$cache/rootfs/$name"
      mv "$tmp" "$rootfs"
      echo "rootfs $rkey: built in $((SECONDS - started))s"
    fi
    layers+=("$rootfs/layer.tar.gz:$(cat "$rootfs/diff_id")")
    unpacked=$(cat "$rootfs/size")
  fi
  mkdir "$work/stage"
  build_top "$work/stage"
  tar -C "$work/stage" -cf "$work/top.tar" --sort=name --numeric-owner --mtime=@0 .
  unpacked=$((unpacked + $(stat -c %s "$work/top.tar")))
  layers+=("$work/top.tar.gz:$(sha256 "$work/top.tar")")
  gzip -n <"$work/top.tar" >"$work/top.tar.gz"
  rm -rf "$cache/oci/$name" && mkdir -p "$cache/oci/$name"
  write_layout "$layout.tmp" "$key" "${layers[@]}"
  mv "$layout.tmp" "$layout"
  local compressed
  compressed=$(du -sb "$layout/blobs" | cut -f1)
  echo "$(mib "$unpacked") unpacked, $(mib "$compressed") compressed" | tee "$layout.sizes"
}

# --- commands -----------------------------------------------------------------

cmd_build() {
  local names=("$@") name key log failed=()
  ((${#names[@]})) || mapfile -t names < <(all_names)
  mkdir -p "$cache/logs"
  # One build at a time (a second caller waits), and out of the way of the
  # Go builds that run beside it: most of the time goes to dpkg and gzip.
  exec 9>"$cache/.lock"
  flock 9
  renice -n 10 -p $$ >/dev/null 2>&1 || true
  for name in "${names[@]}"; do
    load "$name"
    key=$(image_key)
    if [[ -f $cache/oci/$name/$key/index.json ]]; then
      log "image $name:$tag: cached ($key)"
      continue
    fi
    log "image $name:$tag: building ($key)"
    require jq jq
    [[ $from != debian ]] || require mmdebstrap mmdebstrap
    log=$cache/logs/$name.log
    local started=$SECONDS
    # A process of its own, so that `set -e` holds inside it.
    if TESTBED_IMAGE_SELF=$self "$self" _build "$name" >"$log" 2>&1; then
      log "image $name:$tag: built in $((SECONDS - started))s, $(cat "$cache/oci/$name/$key.sizes")"
    else
      tail -n 20 "$log" | sed 's/^/  | /' >&2
      log "error: image $name:$tag failed to build (log: $log)"
      failed+=("$name")
    fi
  done
  ((${#failed[@]} == 0)) || die "images: build failed for ${failed[*]} (logs in $cache/logs)"
}

cmd_push() {
  local registry=${1:?usage: images.sh push REGISTRY [NAME...]} name key layout ref
  shift
  local names=("$@")
  ((${#names[@]})) || mapfile -t names < <(all_names)
  require skopeo skopeo
  for name in "${names[@]}"; do
    load "$name"
    key=$(image_key)
    layout=$cache/oci/$name/$key
    [[ -f $layout/index.json ]] || die "images: $name:$tag ($key) is not built; run images.sh build first"
    ref=$registry/testbed/$name:$tag
    log "image $name: pushing $ref"
    skopeo copy --quiet --retry-times 3 --dest-tls-verify=false "oci:$layout:$tag" "docker://$ref" >&2 ||
      die "images: pushing $name to $ref failed"
    name=${name^^}
    echo "TESTBED_IMAGE_${name//-/_}=$ref"
  done
}

case ${1:-} in
  build) shift && cmd_build "$@" ;;
  push) shift && cmd_push "$@" ;;
  _build) build_image "$2" ;;
  _hook)
    load "$TESTBED_IMAGE_NAME"
    "hook_$2" "$3"
    ;;
  *) die "usage: images.sh build [NAME...] | push REGISTRY [NAME...]" ;;
esac
