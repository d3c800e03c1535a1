#!/bin/bash
# The official postgres image's entrypoint contract, for Debian's PostgreSQL:
# POSTGRES_USER (default postgres), POSTGRES_PASSWORD, POSTGRES_DB (default the
# user), POSTGRES_INITDB_ARGS, POSTGRES_INITDB_WALDIR, POSTGRES_HOST_AUTH_METHOD
# (or *_FILE), PGDATA. A first start runs initdb, allows host connections from
# anywhere with a password (the server's password_encryption, scram-sha-256),
# creates the database through a temporary server that listens on no TCP port
# (so a TCP readiness probe cannot pass early), runs
# /docker-entrypoint-initdb.d, stops it, and then execs postgres.
# Started as root, it drops to postgres, as the official one does with gosu.
set -Eeo pipefail
shopt -s nullglob

# file_env VAR [DEFAULT]: VAR, or the content of the file VAR_FILE names.
file_env() {
  local var=$1 file=${1}_FILE default=${2:-} value
  if [[ -n ${!var:-} && -n ${!file:-} ]]; then
    echo >&2 "error: both $var and $file are set (but are exclusive)"
    exit 1
  fi
  value=$default
  if [[ -n ${!var:-} ]]; then
    value=${!var}
  elif [[ -n ${!file:-} ]]; then
    value=$(<"${!file}")
  fi
  export "$var=$value"
  unset "$file"
}

setup_env() {
  file_env POSTGRES_PASSWORD
  file_env POSTGRES_USER postgres
  file_env POSTGRES_DB "$POSTGRES_USER"
  file_env POSTGRES_INITDB_ARGS
  : "${POSTGRES_HOST_AUTH_METHOD:=}"
  exists=
  if [[ -s $PGDATA/PG_VERSION ]]; then exists=yes; fi
}

create_directories() {
  local uid
  uid=$(id -u)
  mkdir -p "$PGDATA"
  # A volume's permissions (fsGroup adds g+rwx) are not the 0700 postgres wants.
  chmod 00700 "$PGDATA" || :
  mkdir -p /var/run/postgresql || :
  chmod 03775 /var/run/postgresql || :
  if [[ -n ${POSTGRES_INITDB_WALDIR:-} ]]; then
    mkdir -p "$POSTGRES_INITDB_WALDIR"
    [[ $uid != 0 ]] || find "$POSTGRES_INITDB_WALDIR" \! -user postgres -exec chown postgres '{}' +
    chmod 700 "$POSTGRES_INITDB_WALDIR"
  fi
  if [[ $uid == 0 ]]; then
    find "$PGDATA" \! -user postgres -exec chown postgres '{}' +
    find /var/run/postgresql \! -user postgres -exec chown postgres '{}' +
  fi
}

verify_env() {
  if [[ -z $POSTGRES_PASSWORD && $POSTGRES_HOST_AUTH_METHOD != trust ]]; then
    cat >&2 <<'EOM'
Error: Database is uninitialized and superuser password is not specified.
       You must specify POSTGRES_PASSWORD to a non-empty value for the
       superuser. For example, "-e POSTGRES_PASSWORD=password" on "docker run".

       You may also use "POSTGRES_HOST_AUTH_METHOD=trust" to allow all
       connections without a password. This is *not* recommended.
EOM
    exit 1
  fi
  if [[ $POSTGRES_HOST_AUTH_METHOD == trust ]]; then
    echo >&2 'WARNING: POSTGRES_HOST_AUTH_METHOD has been set to "trust": anyone can connect without a password'
  fi
}

init_database_dir() {
  if [[ -n ${POSTGRES_INITDB_WALDIR:-} ]]; then
    set -- --waldir "$POSTGRES_INITDB_WALDIR" "$@"
  fi
  # The "\n": initdb refuses a password file that is properly empty.
  eval 'initdb --username="$POSTGRES_USER" --pwfile=<(printf "%s\n" "$POSTGRES_PASSWORD") '"$POSTGRES_INITDB_ARGS"' "$@"'
}

# setup_hba SERVER_ARGS...: host connections from anywhere, with a password.
setup_hba() {
  local auth
  auth=$(postgres -C password_encryption "${@:2}")
  : "${POSTGRES_HOST_AUTH_METHOD:=$auth}"
  {
    printf '\n'
    [[ $POSTGRES_HOST_AUTH_METHOD != trust ]] || printf '# warning trust is enabled for all connections\n'
    printf 'host all all all %s\n' "$POSTGRES_HOST_AUTH_METHOD"
  } >>"$PGDATA/pg_hba.conf"
}

# sql [PSQL_ARGS...]: SQL from stdin, over the socket, as POSTGRES_USER.
sql() {
  local args=(-v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc)
  [[ -z $POSTGRES_DB ]] || args+=(--dbname "$POSTGRES_DB")
  PGHOST='' PGHOSTADDR='' psql "${args[@]}" "$@"
}

# temp_server_start SERVER_ARGS...: on the socket only.
temp_server_start() {
  set -- "${@:2}" -c listen_addresses='' -p "${PGPORT:-5432}"
  PGUSER=${PGUSER:-$POSTGRES_USER} pg_ctl -D "$PGDATA" -o "$(printf '%q ' "$@")" -w start
}

temp_server_stop() {
  PGUSER=${PGUSER:-postgres} pg_ctl -D "$PGDATA" -m fast -w stop
}

setup_db() {
  [[ $POSTGRES_DB != postgres ]] || return 0
  local db=$POSTGRES_DB found
  found=$(POSTGRES_DB=postgres sql --set db="$db" --tuples-only <<<"SELECT 1 FROM pg_database WHERE datname = :'db' ;")
  if [[ -z ${found// /} ]]; then
    POSTGRES_DB=postgres sql --set db="$db" <<<"CREATE DATABASE :\"db\" ;"
    echo
  fi
}

process_init_files() {
  local f
  echo
  for f in /docker-entrypoint-initdb.d/*; do
    case $f in
      *.sh)
        if [[ -x $f ]]; then
          echo "$0: running $f"
          "$f"
        else
          echo "$0: sourcing $f"
          # shellcheck source=/dev/null
          . "$f"
        fi
        ;;
      *.sql) echo "$0: running $f" && sql -f "$f" && echo ;;
      *.sql.gz) echo "$0: running $f" && gzip -dc "$f" | sql && echo ;;
      *.sql.xz) echo "$0: running $f" && xz -dc "$f" | sql && echo ;;
      *.sql.zst) echo "$0: running $f" && zstd -dc "$f" | sql && echo ;;
      *) echo "$0: ignoring $f" ;;
    esac
  done
}

# Options alone get the server prepended.
if [[ ${1:0:1} == - ]]; then
  set -- postgres "$@"
fi

if [[ $1 == postgres ]] && ! printf '%s\n' "$@" | grep -qE '^(-\?|--help|--describe-config|-C|--version|-V)$'; then
  setup_env
  create_directories
  if [[ $(id -u) == 0 ]]; then
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
  fi
  if [[ -z $exists ]]; then
    verify_env
    # A clear error now rather than a failed init script later.
    ls /docker-entrypoint-initdb.d/ >/dev/null
    init_database_dir
    setup_hba "$@"
    export PGPASSWORD=${PGPASSWORD:-$POSTGRES_PASSWORD}
    temp_server_start "$@"
    setup_db
    process_init_files
    temp_server_stop
    unset PGPASSWORD
    echo
    echo 'PostgreSQL init process complete; ready for start up.'
    echo
  else
    echo
    echo 'PostgreSQL Database directory appears to contain a database; Skipping initialization'
    echo
  fi
fi

exec "$@"
