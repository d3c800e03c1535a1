#!/bin/sh
# The official redis image's entrypoint, for Debian's redis-server: options or
# a .conf file alone get redis-server prepended; started as root, it drops to
# redis. The official binary is patched to start without protected mode;
# Debian's is not, so `--protected-mode no` goes first unless a config file
# sets it (later arguments still win).
set -e

if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
  set -- redis-server "$@"
fi

if [ "$1" = redis-server ] && [ "$(id -u)" = 0 ]; then
  find . \! -user redis -exec chown redis '{}' +
  exec setpriv --reuid=redis --regid=redis --init-groups "$0" "$@"
fi

if [ "$1" = redis-server ]; then
  shift
  if [ -f "${1:-}" ]; then
    conf=$1
    shift
    if grep -qs '^[[:space:]]*protected-mode' "$conf"; then
      set -- redis-server "$conf" "$@"
    else
      set -- redis-server "$conf" --protected-mode no "$@"
    fi
  else
    set -- redis-server --protected-mode no "$@"
  fi
fi

# Like the official image: files private to the server unless a umask was chosen.
if [ "$(umask)" = 0022 ]; then
  umask 0077
fi

exec "$@"
