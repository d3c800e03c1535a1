#!/bin/sh
# A client-go exec credential plugin, as EKS uses one: it prints a token that
# the test bed's API server accepts through its --token-auth-file.
set -eu
token=$(cat "${TESTBED_TOKEN_FILE:?}")
expiry=$(date -u -d '+15 minutes' +%Y-%m-%dT%H:%M:%SZ)
printf '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"%s","expirationTimestamp":"%s"}}\n' \
  "$token" "$expiry"
