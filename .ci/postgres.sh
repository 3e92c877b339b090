# Start a throwaway PostgreSQL cluster on 127.0.0.1 for the tests; sourced by .ci/run.
PG_DIR="${PG_DIR:-$(mktemp -d /tmp/clinrlhf-pg.XXXXXX)}"
PG_PORT="${PG_PORT:-54329}"

start_postgres() {
  local bin
  bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1) || return 1
  [ -x "$bin/initdb" ] || return 1
  chown postgres "$PG_DIR" 2>/dev/null || true
  local as=()
  [ "$(id -u)" = 0 ] && as=(runuser -u postgres --)
  "${as[@]}" "$bin/initdb" -D "$PG_DIR/data" -U postgres --auth=trust >/dev/null
  "${as[@]}" "$bin/pg_ctl" -D "$PG_DIR/data" -o "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1" \
    -l "$PG_DIR/log" -w start >/dev/null
  "${as[@]}" "$bin/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres clinrlhf_test
  export CLINRLHF_TEST_POSTGRES_URL="postgresql+psycopg://postgres@127.0.0.1:$PG_PORT/clinrlhf_test"
  PG_BIN="$bin"
}

stop_postgres() {
  if [ -n "${PG_BIN:-}" ]; then
    local as=()
    [ "$(id -u)" = 0 ] && as=(runuser -u postgres --)
    "${as[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast stop >/dev/null 2>&1 || true
  fi
  rm -rf "$PG_DIR"
}
