#!/usr/bin/env bash
# Run a command against a throwaway MinIO server (the real one, built by build.sh):
#
#   tests/minio/with-minio.sh CMD [ARGS...]
#
# Starts MinIO on a free loopback port with a temporary data directory, creates the bucket
# `capsa-test`, exports
#
#   AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION   (for capsa and aws)
#   CAPSA_TEST_S3_BUCKET   capsa-test
#   CAPSA_TEST_MINIO_CTL   "<this script> ctl DIR": `$CAPSA_TEST_MINIO_CTL stop` stops the
#                          server, `$CAPSA_TEST_MINIO_CTL start` starts it again (same port, data)
#   CAPSA_TEST_AWS         an `aws` command (awscli; installed into the cache if missing)
#
# runs CMD, and always stops the server and removes the directory (trap), whatever CMD does.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
self="$here/$(basename "${BASH_SOURCE[0]}")"
cache="${CAPSA_CACHE:-$HOME/.cache/capsa}"

start_server() {
  # start_server DIR: run minio in the background with the settings saved in DIR/env.
  local dir="$1"
  # shellcheck disable=SC1091
  . "$dir/env"
  MINIO_ROOT_USER="$user" MINIO_ROOT_PASSWORD="$password" MINIO_BROWSER=off \
    MINIO_API_STALE_UPLOADS_EXPIRY=1h \
    setsid "$bin" server --quiet --address "127.0.0.1:$port" "$dir/data" \
    >>"$dir/server.log" 2>&1 < /dev/null &
  echo $! >"$dir/pid"
  local i
  for i in $(seq 1 200); do
    if curl -fsS "http://127.0.0.1:$port/minio/health/live" >/dev/null 2>&1; then
      return 0
    fi
    if ! kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
      cat "$dir/server.log" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "with-minio: MinIO did not become ready" >&2
  cat "$dir/server.log" >&2
  return 1
}

stop_server() {
  local dir="$1" pid
  pid="$(cat "$dir/pid" 2>/dev/null || true)"
  [ -n "$pid" ] || return 0
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$dir/pid"
}

if [ "${1:-}" = "ctl" ]; then
  case "$3" in
    stop) stop_server "$2" ;;
    start) start_server "$2" ;;
    *) echo "with-minio.sh ctl: unknown action $3" >&2; exit 2 ;;
  esac
  exit 0
fi

if [ $# -eq 0 ]; then
  echo "usage: $0 CMD [ARGS...]" >&2
  exit 2
fi

bin="$(bash "$here/build.sh")"

aws_cmd="$(command -v aws || true)"
if [ -z "$aws_cmd" ]; then
  venv="$cache/awscli-venv"
  if [ ! -x "$venv/bin/aws" ]; then
    echo "with-minio: installing awscli (PyPI) into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q awscli
  fi
  aws_cmd="$venv/bin/aws"
fi

tmp="$(mktemp -d "${TMPDIR:-/tmp}/capsa-minio.XXXXXX")"
mkdir "$tmp/data"
cleanup() {
  stop_server "$tmp"
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
cat >"$tmp/env" <<ENV
bin='$bin'
port=$port
user=capsa-test
password=capsa-test-secret
ENV
start_server "$tmp"

export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
export AWS_ACCESS_KEY_ID=capsa-test
export AWS_SECRET_ACCESS_KEY=capsa-test-secret
export AWS_REGION=us-east-1
export AWS_DEFAULT_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true
export CAPSA_TEST_S3_BUCKET=capsa-test
export CAPSA_TEST_MINIO_CTL="$self ctl $tmp"
export CAPSA_TEST_AWS="$aws_cmd"
"$aws_cmd" --endpoint-url "$AWS_ENDPOINT_URL" s3 mb "s3://$CAPSA_TEST_S3_BUCKET" >/dev/null
echo "with-minio: $("$bin" --version | head -1) on 127.0.0.1:$port (data $tmp/data)"
set +e
"$@"
code=$?
set -e
exit $code
