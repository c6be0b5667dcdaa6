#!/usr/bin/env bash
# Builds the FunctionGraph HTTP-function code packages of koogate: one zip per architecture, each
# holding `bootstrap` (this directory's startup script, mode 0755) and the `koogate` binary
# (mode 0755) at the zip's root, as FunctionGraph requires.
#
#   packaging/huaweicloud/package.sh [--arch x86_64|aarch64|host|all]... [--profile release|debug] [--out DIR]
#
# Defaults: --arch all (x86_64 and aarch64), --profile release, --out dist/huaweicloud.
#
# * x86_64 and aarch64 are built with `cargo lambda build --x86-64|--arm64` (cargo-lambda and zig
#   come from the project virtualenv, tests/requirements.txt): Linux glibc binaries linked against
#   an old glibc, so they run on FunctionGraph's runtime image and on any current ECS image.
# * host builds with plain cargo for the machine's own architecture (Linux only): what the smoke
#   test uses, fast in debug. Its binary needs the build machine's glibc or older.
#
# Output: DIR/koogate-huaweicloud-<arch>.zip (arch x86_64, aarch64, or host-<uname -m>) and a
# SHA256SUMS file next to them.
set -euo pipefail

root=$(CDPATH='' cd -- "$(dirname -- "$0")/../.." && pwd)
here="$root/packaging/huaweicloud"
archs=()
profile=release
out="$root/dist/huaweicloud"

while [ $# -gt 0 ]; do
    case "$1" in
        --arch) archs+=("$2"); shift 2 ;;
        --profile) profile="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) echo "package.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
[ ${#archs[@]} -gt 0 ] || archs=(all)
case "$profile" in release|debug) ;; *) echo "package.sh: --profile release or debug" >&2; exit 2 ;; esac
if [ "$(uname -s)" != Linux ] && printf '%s\n' "${archs[@]}" | grep -qx host; then
    echo "package.sh: --arch host needs a Linux build machine (FunctionGraph runs Linux)" >&2
    exit 2
fi

py=$(command -v python3 || command -v python)
target_dir=$(cd "$root" && cargo metadata --format-version 1 --no-deps \
    | "$py" -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
release_flag=()
[ "$profile" = release ] && release_flag=(--release)

expanded=()
for a in "${archs[@]}"; do
    case "$a" in
        all) expanded+=(x86_64 aarch64) ;;
        x86_64|aarch64|host) expanded+=("$a") ;;
        *) echo "package.sh: unknown --arch $a (x86_64, aarch64, host, all)" >&2; exit 2 ;;
    esac
done

mkdir -p "$out"
for arch in "${expanded[@]}"; do
    case "$arch" in
        host)
            (cd "$root" && cargo build ${release_flag[@]+"${release_flag[@]}"} -p koogate-cli --bin koogate)
            binary="$target_dir/$profile/koogate"
            name="host-$(uname -m)"
            ;;
        x86_64|aarch64)
            if ! command -v cargo-lambda >/dev/null; then
                echo "package.sh: cargo-lambda is not on PATH; run 'make venv' (tests/requirements.txt installs it with zig)" >&2
                exit 2
            fi
            flag=--x86-64
            [ "$arch" = aarch64 ] && flag=--arm64
            (cd "$root" && cargo lambda build ${release_flag[@]+"${release_flag[@]}"} "$flag" -p koogate-cli --bin koogate)
            # cargo-lambda writes the binary as lambda/<bin>/bootstrap (each build replaces it: it
            # is zipped before the next architecture is built).
            binary="$target_dir/$arch-unknown-linux-gnu/$profile/koogate"
            [ -x "$binary" ] || binary="$target_dir/lambda/koogate/bootstrap"
            name="$arch"
            ;;
    esac
    [ -x "$binary" ] || { echo "package.sh: no binary at $binary" >&2; exit 1; }
    zip_path="$out/koogate-huaweicloud-$name.zip"
    "$py" - "$zip_path" "$here/bootstrap" "$binary" <<'PY'
import os, sys, zipfile
zip_path, bootstrap, binary = sys.argv[1:4]
tmp = zip_path + ".tmp"
with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as z:
    for src, name in ((bootstrap, "bootstrap"), (binary, "koogate")):
        info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
        info.create_system = 3  # Unix: the mode below is honoured when unpacked
        info.external_attr = (0o100755 & 0xFFFF) << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        with open(src, "rb") as f:
            z.writestr(info, f.read())
os.replace(tmp, zip_path)
PY
    echo "package.sh: $zip_path ($(du -h "$zip_path" | cut -f1), $arch, $profile)"
done
(cd "$out" && sha256sum koogate-huaweicloud-*.zip > SHA256SUMS)
