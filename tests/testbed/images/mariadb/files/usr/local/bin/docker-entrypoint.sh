#!/bin/bash
# The official mariadb image's entrypoint contract, for Debian's MariaDB:
# MARIADB_* or MYSQL_* variables (or *_FILE), a refusal to initialise without
# a root password option, and a first start that installs the system tables,
# runs a temporary server on the socket only (so a TCP readiness probe cannot
# pass early), creates the database and user, sets the root password, runs
# /docker-entrypoint-initdb.d, stops, and then execs the real server.
# Started as root, it drops to mysql, as the official one does with gosu.
set -eo pipefail
shopt -s nullglob

say() { printf '%s [%s] [Entrypoint]: %s\n' "$(date --rfc-3339=seconds)" "$1" "${*:2}" >&2; }
note() { say Note "$@"; }
warn() { say Warn "$@"; }
error() {
  say ERROR "$@"
  exit 1
}

# env_var MARIADB_NAME MYSQL_NAME [DEFAULT]: the first set of MARIADB_NAME,
# MARIADB_NAME_FILE, MYSQL_NAME, MYSQL_NAME_FILE, exported under both names.
env_var() {
  local maria=$1 mysql=$2 default=${3:-} var file value=
  for var in "$maria" "$mysql"; do
    file=${var}_FILE
    if [[ -n ${!var:-} && -n ${!file:-} ]]; then
      error "both $var and $file are set (but are exclusive)"
    fi
    if [[ -n ${!var:-} ]]; then
      value=${!var}
      break
    fi
    if [[ -n ${!file:-} ]]; then
      value=$(<"${!file}")
      break
    fi
  done
  export "$maria=${value:-$default}" "$mysql=${value:-$default}"
  unset "${maria}_FILE" "${mysql}_FILE"
}

# server_option NAME SERVER_ARGS...: the server's effective setting.
server_option() {
  local name=$1
  shift
  "$@" --verbose --help 2>/dev/null |
    awk -v name="$name" '$1 == name && /^[^ \t]/ { sub(/^[^ \t]+[ \t]+/, ""); print; exit }'
}

sql_string() {
  local s=${1//\\/\\\\}
  s=${s//$'\n'/\\n}
  printf '%s' "${s//\'/\\\'}"
}

# sql [CLIENT_ARGS...]: run SQL from stdin on the temporary server, as root.
sql() {
  MYSQL_PWD=$root_password mariadb --protocol=socket --socket="$socket" -uroot -hlocalhost "$@"
}

# sql_db: the same, in MARIADB_DATABASE if there is one (for the init files).
sql_db() {
  sql ${MARIADB_DATABASE:+"--database=$MARIADB_DATABASE"}
}

setup_env() {
  env_var MARIADB_ROOT_PASSWORD MYSQL_ROOT_PASSWORD
  env_var MARIADB_ROOT_PASSWORD_HASH MYSQL_ROOT_PASSWORD_HASH
  env_var MARIADB_ALLOW_EMPTY_ROOT_PASSWORD MYSQL_ALLOW_EMPTY_PASSWORD
  env_var MARIADB_RANDOM_ROOT_PASSWORD MYSQL_RANDOM_ROOT_PASSWORD
  env_var MARIADB_ROOT_HOST MYSQL_ROOT_HOST %
  env_var MARIADB_DATABASE MYSQL_DATABASE
  env_var MARIADB_USER MYSQL_USER
  env_var MARIADB_PASSWORD MYSQL_PASSWORD
  env_var MARIADB_PASSWORD_HASH MYSQL_PASSWORD_HASH
  env_var MARIADB_MYSQL_LOCALHOST_USER MYSQL_MYSQL_LOCALHOST_USER
  env_var MARIADB_MYSQL_LOCALHOST_GRANTS MYSQL_MYSQL_LOCALHOST_GRANTS USAGE
}

verify_env() {
  if [[ -z $MARIADB_ROOT_PASSWORD && -z $MARIADB_ROOT_PASSWORD_HASH &&
    -z $MARIADB_ALLOW_EMPTY_ROOT_PASSWORD && -z $MARIADB_RANDOM_ROOT_PASSWORD ]]; then
    error $'Database is uninitialized and password option is not specified\n\tYou need to specify one of MARIADB_ROOT_PASSWORD, MARIADB_ROOT_PASSWORD_HASH, MARIADB_ALLOW_EMPTY_ROOT_PASSWORD and MARIADB_RANDOM_ROOT_PASSWORD'
  fi
  if [[ $MARIADB_USER == root ]]; then
    error 'MARIADB_USER="root": MARIADB_USER and MARIADB_PASSWORD are for a regular user, not for root'
  fi
  if [[ -n $MARIADB_PASSWORD$MARIADB_PASSWORD_HASH && -z $MARIADB_USER ]]; then
    warn 'MARIADB_PASSWORD specified, but missing MARIADB_USER; MARIADB_PASSWORD will be ignored'
  fi
}

# initialise SERVER_ARGS...
initialise() {
  note "Initializing database files in $datadir"
  # --force: without DNS for the hostname, mariadb-install-db would refuse.
  mariadb-install-db --datadir="$datadir" --rpm --auth-root-authentication-method=normal --force \
    --skip-test-db --old-mode=UTF8_IS_UTF8MB3 --default-time-zone=SYSTEM --enforce-storage-engine= \
    --skip-log-bin --expire-logs-days=0 --loose-innodb_buffer_pool_load_at_startup=0 \
    --loose-innodb_buffer_pool_dump_at_shutdown=0 "${@:2}"
  note "Database files initialized"

  note "Starting temporary server"
  "$@" --skip-networking --default-time-zone=SYSTEM --socket="$socket" --loose-wsrep_on=OFF \
    --expire-logs-days=0 --skip-slave-start --loose-innodb_buffer_pool_load_at_startup=0 \
    --skip-ssl &
  local pid=$! i
  root_password=
  for i in {30..0}; do
    if sql --database=mysql <<<'SELECT 1' &>/dev/null; then break; fi
    kill -0 "$pid" 2>/dev/null || error "the temporary server exited (output above)"
    sleep 1
  done
  ((i > 0)) || error "the temporary server did not start in 30s"
  note "Temporary server started."

  if [[ -n $MARIADB_RANDOM_ROOT_PASSWORD ]]; then
    # A finite input: tr on /dev/urandom would die of SIGPIPE under pipefail.
    MARIADB_ROOT_PASSWORD=$(head -c 1024 /dev/urandom | LC_ALL=C tr -dc 'A-Za-z0-9' | head -c 32)
    note "GENERATED ROOT PASSWORD: $MARIADB_ROOT_PASSWORD"
  fi
  local root_auth='' root_remote='' database='' user='' grants='' socket_user=''
  if [[ -n $MARIADB_ROOT_PASSWORD_HASH ]]; then
    root_auth="IDENTIFIED BY PASSWORD '$(sql_string "$MARIADB_ROOT_PASSWORD_HASH")'"
  else
    root_auth="IDENTIFIED BY '$(sql_string "$MARIADB_ROOT_PASSWORD")'"
  fi
  if [[ $MARIADB_ROOT_HOST != localhost ]]; then
    local host
    host=$(sql_string "$MARIADB_ROOT_HOST")
    root_remote="CREATE USER 'root'@'$host' $root_auth;
      GRANT ALL ON *.* TO 'root'@'$host' WITH GRANT OPTION;
      GRANT PROXY ON ''@'%' TO 'root'@'$host' WITH GRANT OPTION;"
  fi
  if [[ -n $MARIADB_MYSQL_LOCALHOST_USER ]]; then
    socket_user="CREATE USER mysql@localhost IDENTIFIED VIA unix_socket;"
    [[ $MARIADB_MYSQL_LOCALHOST_GRANTS == USAGE ]] ||
      socket_user+="GRANT $MARIADB_MYSQL_LOCALHOST_GRANTS ON *.* TO mysql@localhost;"
  fi
  if [[ -n $MARIADB_DATABASE ]]; then
    note "Creating database $MARIADB_DATABASE"
    database="CREATE DATABASE IF NOT EXISTS \`${MARIADB_DATABASE//\`/\`\`}\`;"
  fi
  if [[ -n $MARIADB_USER ]]; then
    note "Creating user $MARIADB_USER"
    local name password
    name=$(sql_string "$MARIADB_USER")
    if [[ -n $MARIADB_PASSWORD_HASH ]]; then
      password="PASSWORD '$(sql_string "$MARIADB_PASSWORD_HASH")'"
    else
      password="'$(sql_string "$MARIADB_PASSWORD")'"
    fi
    user="CREATE USER '$name'@'%' IDENTIFIED BY $password;"
    [[ -z $MARIADB_DATABASE ]] ||
      grants="GRANT ALL ON \`${MARIADB_DATABASE//\`/\`\`}\`.* TO '$name'@'%';"
  fi
  note "Securing system users (equivalent to running mysql_secure_installation)"
  sql --database=mysql --binary-mode <<EOSQL
SET @orig_sql_log_bin= @@SESSION.SQL_LOG_BIN;
SET @@SESSION.SQL_LOG_BIN=0;
SET @@SESSION.SQL_MODE=REPLACE(@@SESSION.SQL_MODE, 'NO_BACKSLASH_ESCAPES', '');
DROP USER IF EXISTS root@'127.0.0.1', root@'::1';
EXECUTE IMMEDIATE CONCAT('DROP USER IF EXISTS root@\'', @@hostname, '\'');
ALTER USER 'root'@'localhost' $root_auth;
$root_remote
$socket_user
SET @@SESSION.SQL_LOG_BIN=@orig_sql_log_bin;
$database
$user
$grants
EOSQL
  root_password=$MARIADB_ROOT_PASSWORD

  local f
  for f in /docker-entrypoint-initdb.d/*; do
    case $f in
      *.sh)
        if [[ -x $f ]]; then
          note "running $f"
          "$f"
        else
          note "sourcing $f"
          # shellcheck source=/dev/null
          . "$f"
        fi
        ;;
      *.sql) note "running $f" && sql_db <"$f" ;;
      *.sql.gz) note "running $f" && gzip -dc "$f" | sql_db ;;
      *.sql.xz) note "running $f" && xz -dc "$f" | sql_db ;;
      *.sql.zst) note "running $f" && zstd -dc "$f" | sql_db ;;
      *) warn "ignoring $f" ;;
    esac
  done

  note "Stopping temporary server"
  kill "$pid"
  wait "$pid"
  note "Temporary server stopped"
  note "MariaDB init process done. Ready for start up."
}

# Options alone get the server prepended.
if [[ ${1:0:1} == - ]]; then
  set -- mariadbd "$@"
fi

if [[ $1 == mariadbd || $1 == mysqld ]] && ! printf '%s\n' "$@" | grep -qE '^(-\?|--help|-V|--version)$'; then
  note "Entrypoint script for MariaDB Server started."
  "$@" --verbose --help >/dev/null 2>&1 || error "mariadbd failed while reading its options: $("$@" --verbose --help 2>&1 >/dev/null)"
  datadir=$(server_option datadir "$@")
  datadir=${datadir%/}
  socket=$(server_option socket "$@")
  if [[ $(id -u) == 0 ]]; then
    mkdir -p "$datadir"
    find "$datadir" \! -user mysql -exec chown mysql: '{}' +
    find "${socket%/*}" -maxdepth 0 \! -user mysql -exec chown mysql: '{}' \;
    note "Switching to dedicated user 'mysql'"
    exec setpriv --reuid=mysql --regid=mysql --init-groups "$0" "$@"
  fi
  if [[ -d $datadir/mysql ]]; then
    note "MariaDB data directory $datadir holds a database; skipping initialization"
  else
    setup_env
    verify_env
    initialise "$@"
  fi
fi

exec "$@"
