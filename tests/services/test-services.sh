#!/usr/bin/env bash
# Installs the local servers that the integration tests start on 127.0.0.1, into a cache folder keyed by the
# hash of this script (editing the script re-installs everything; an unchanged script installs once):
#   ${CARGO_TARGET_DIR:-<repo>/target}/test-services/<hash>/<service>/
#
#   test-services.sh install SERVICE...    install if missing, then print each service's folder (one line each)
#   test-services.sh dir                   print the cache folder
#   test-services.sh watchdog OWNER PID LOG   kill PID once process OWNER has exited and remove its LOG, so
#                                          that a test run that is killed (timeout, Ctrl-C), or a server kept
#                                          for a whole test process, leaves nothing running
#
# Services: s3 (moto, an S3-compatible server), bigquery (local-bigquery, a BigQuery emulator), bench (the Python
# peers of the benchmarks: DuckDB, ChannelAttribution). Tests start and stop the servers themselves
# (tests/common/services.rs); this script only installs and cleans up.
#
# Installing is idempotent and safe when several test binaries call it at once: each service installs under
# an exclusive flock, and a service counts as installed only once its `.installed` marker exists, so an
# interrupted install is redone from scratch.
set -euo pipefail

script=$(readlink -f "${BASH_SOURCE[0]}")
repo=$(cd "$(dirname "$script")/../.." && pwd)
target_dir=${CARGO_TARGET_DIR:-$repo/target}
case $target_dir in /*) ;; *) target_dir=$repo/$target_dir ;; esac
hash=$(sha256sum "$script" | cut -c1-16)
cache=$target_dir/test-services/$hash

log() { echo "[test-services] $*" >&2; }
die() { log "error: $*"; exit 1; }

# Python for the services' virtualenvs: the first `python3` on PATH that is at least the given version.
python_at_least() { # minor version of 3.x
  local minor=$1 candidate
  for candidate in python3 "python3.$minor" "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.*/bin/python3; do
    if "$candidate" -c "import sys, venv; sys.exit(sys.version_info < (3, $minor))" 2>/dev/null; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

# One function per service: install_<service> DEST installs into the empty folder DEST.
install_s3() {
  local dest=$1 python
  python=$(python_at_least 9) || die "s3: no python >= 3.9 with the venv module found"
  "$python" -m venv "$dest"
  # moto's server extra brings flask/werkzeug; boto3 (a moto dependency) is used by the tests to create buckets
  "$dest/bin/pip" install --quiet --disable-pip-version-check "moto[server]==5.2.5"
  [ -x "$dest/bin/moto_server" ] || die "s3: moto_server missing after install"
}

# Not a server: the peers the benchmarks compare against (benches/peers/*.py) and the ChannelAttribution oracle
# test. ChannelAttribution is GPL: it runs only as a separate Python process, never linked. It has no wheel for
# Linux (builds from source in ~2 min) and imports matplotlib at load time; pandas reads DuckDB's results.
install_bench() {
  local dest=$1 python
  python=$(python_at_least 10) || die "bench: no python >= 3.10 with the venv module found"
  "$python" -m venv "$dest"
  "$dest/bin/pip" install --quiet --disable-pip-version-check duckdb==2.0.0 channelattribution==2.2.5 \
    matplotlib==3.11.2 numpy==2.4.6 pandas==3.1.1
  "$dest/bin/python" -c "import duckdb, ChannelAttribution" >/dev/null || die "bench: the packages do not import"
}

# A BigQuery emulator: local-bigquery 0.4.0 (DuckDB underneath). Start it with HOME=$dest/duckdb-home so that
# DuckDB finds its extensions there instead of downloading them (which fails offline, and then every request).
install_bigquery() {
  local dest=$1 python extensions
  python=$(python_at_least 13) || die "bigquery: local-bigquery needs python >= 3.13 with the venv module"
  "$python" -m venv "$dest"
  # local-bigquery 0.4.0 declares duckdb>=2.0.0, but the DuckDB extensions it loads (ducklake, icu, spatial)
  # are on PyPI only for duckdb 1.5.5: install it without dependencies and pin them here.
  "$dest/bin/pip" install --quiet --disable-pip-version-check --no-deps local-bigquery==0.4.0
  "$dest/bin/pip" install --quiet --disable-pip-version-check duckdb==1.5.5 duckdb-extension-ducklake==1.5.5 \
    duckdb-extension-icu==1.5.5 duckdb-extension-spatial==1.5.5 "fastapi>=0.139" "fastavro>=1.13.1" \
    "google-cloud-bigquery-storage>=2.41.0" "grpcio>=1.84.1" "mini-racer>=0.12.4" "numpy>=2.5.4" \
    "prompt-toolkit>=3.0.50" "pyarrow>=26.0.0" "pydantic-settings>=2.8.1" "pygments>=2.19.1" \
    "sqlglot>=30.24" "uvicorn>=0.35"
  extensions=$dest/duckdb-home/.duckdb/extensions/v1.5.5/linux_amd64
  mkdir -p "$extensions"
  find "$dest" -path '*extensions/v1.5.5/*.duckdb_extension' -exec cp -f {} "$extensions/" \;
  [ -n "$(ls "$extensions")" ] || die "bigquery: no DuckDB extension files found in the installed wheels"
  [ -x "$dest/bin/local-bigquery" ] || die "bigquery: local-bigquery missing after install"
}

install_one() {
  local service=$1 dest=$cache/$1 started
  declare -F "install_$service" >/dev/null || die "unknown service '$service' (known: s3, bigquery, bench)"
  if [ ! -f "$dest/.installed" ]; then
    mkdir -p "$cache"
    exec 9>"$cache/$service.lock"
    flock --timeout 1200 9 || die "$service: timed out waiting for another install to finish"
    if [ ! -f "$dest/.installed" ]; then # another process may have finished it while we waited
      started=$(date +%s)
      log "installing $service into $dest"
      rm -rf "$dest"
      if ! "install_$service" "$dest"; then
        rm -rf "$dest"
        die "$service: install failed (see the messages above)"
      fi
      touch "$dest/.installed"
      log "installed $service in $(( $(date +%s) - started )) s"
    fi
    exec 9>&-
  fi
  echo "$dest"
}

watchdog() {
  local owner=$1 pid=$2 log=$3
  while kill -0 "$owner" 2>/dev/null; do sleep 1; done
  kill "$pid" 2>/dev/null || true
  rm -f "$log"
}

command=${1:-}
case $command in
  install)
    shift
    [ $# -gt 0 ] || die "usage: $0 install SERVICE..."
    for service in "$@"; do install_one "$service"; done
    ;;
  dir) echo "$cache" ;;
  watchdog)
    [ $# -eq 4 ] || die "usage: $0 watchdog OWNER_PID PID LOG"
    watchdog "$2" "$3" "$4"
    ;;
  *) die "usage: $0 install SERVICE... | dir | watchdog OWNER_PID PID LOG" ;;
esac
