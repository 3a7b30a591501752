# Shared helpers for the scripts in this folder. Source it; don't run it.
# Every install step here runs only when the thing it installs is missing.

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VAR="$ROOT/var"
# Tools that outlive a checkout (Python client, kcat's library) live here, shared by clones.
TOOLS="${EVENTMART_TOOLS:-$HOME/.cache/eventmart}"
TANSU_VERSION="0.6.0"

say() { printf '\033[1m==>\033[0m %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

apt_install() {
  if [ -z "${_APT_UPDATED:-}" ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    _APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

ensure_tansu() {
  export PATH="$HOME/.cargo/bin:$PATH"
  if tansu --version 2>/dev/null | grep -q "$TANSU_VERSION"; then return; fi
  say "installing the local broker (tansu $TANSU_VERSION); this takes several minutes, once"
  cargo install tansu --version "$TANSU_VERSION" --locked --features libsql,dynostore
}

# Debian's kcat links a librdkafka too old for the local broker; the Python client ships a
# current one, which kcat loads through LD_LIBRARY_PATH (see scripts/kcat).
ensure_python() {
  local venv="$TOOLS/py"
  if [ ! -x "$venv/bin/python" ]; then
    say "creating the Python tool environment in $venv"
    mkdir -p "$TOOLS"
    python3 -m venv "$venv"
  fi
  if ! "$venv/bin/python" -c 'from confluent_kafka.schema_registry.avro import AvroSerializer' 2>/dev/null; then
    say "installing confluent-kafka (with its Avro and Schema Registry extras)"
    "$venv/bin/pip" install -q --disable-pip-version-check "confluent-kafka[avro,schemaregistry]"
  fi
  EVENTMART_PYTHON="$venv/bin/python"
  export EVENTMART_PYTHON
}

# schemathesis checks the query APIs against their own OpenAPI documents.
ensure_schemathesis() {
  ensure_python
  local venv="$TOOLS/py"
  if ! "$venv/bin/st" --version >/dev/null 2>&1; then
    say "installing schemathesis"
    "$venv/bin/pip" install -q --disable-pip-version-check schemathesis
  fi
  EVENTMART_SCHEMATHESIS="$venv/bin/st"
  export EVENTMART_SCHEMATHESIS
}

# The README's walk-through picks ids out of JSON answers with jq.
ensure_jq() {
  command -v jq >/dev/null 2>&1 || { say "installing jq"; apt_install jq; }
}

ensure_kcat() {
  ensure_python
  command -v kcat >/dev/null || { say "installing kcat"; apt_install kcat; }
  local shim="$TOOLS/librdkafka"
  if [ ! -e "$shim/librdkafka.so.1" ]; then
    local lib
    lib=$(ls "$TOOLS"/py/lib/python3*/site-packages/confluent_kafka.libs/librdkafka*.so* 2>/dev/null | head -n1)
    [ -n "$lib" ] || die "confluent-kafka ships no librdkafka in $TOOLS/py"
    mkdir -p "$shim"
    ln -sf "$lib" "$shim/librdkafka.so.1"
  fi
  EVENTMART_KCAT_LIBS="$shim"
  export EVENTMART_KCAT_LIBS
}

ensure_postgres() {
  if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then return; fi
  say "starting PostgreSQL"
  if command -v pg_ctlcluster >/dev/null; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n1)" main start
  else
    die "PostgreSQL is not running on 127.0.0.1:5432 and pg_ctlcluster is missing"
  fi
  for _ in $(seq 1 50); do pg_isready -q -h 127.0.0.1 -p 5432 && return; sleep 0.2; done
  die "PostgreSQL did not come up on 127.0.0.1:5432"
}

# is_running NAME: true when var/run/NAME.pid names a live process.
is_running() {
  local pidfile="$VAR/run/$1.pid"
  [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

# start NAME CMD...: runs CMD in the background from the project root, logging to
# var/log/NAME.log and remembering its pid; does nothing if NAME already runs.
start() {
  local name=$1; shift
  mkdir -p "$VAR/run" "$VAR/log"
  if is_running "$name"; then say "$name already running (pid $(cat "$VAR/run/$name.pid"))"; return; fi
  # exec, so that the recorded pid is the program's own and scripts/down stops the program.
  (cd "$ROOT" && exec nohup "$@" >>"$VAR/log/$name.log" 2>&1 </dev/null) &
  echo $! >"$VAR/run/$name.pid"
  say "started $name (pid $(cat "$VAR/run/$name.pid"), log var/log/$name.log)"
}

# wait_http NAME URL: waits up to 60 s for URL to answer 2xx.
wait_http() {
  for _ in $(seq 1 300); do
    curl -fsS -o /dev/null "$2" 2>/dev/null && return
    is_running "$1" || die "$1 exited; see var/log/$1.log"
    sleep 0.2
  done
  die "$1 did not become ready at $2; see var/log/$1.log"
}
