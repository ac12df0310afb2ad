#!/usr/bin/env bash
# What a conda-store user scripts with curl, written as conda-store's documentation does:
# JSON login for the cookie, a token minted with it, a specification POSTed, the build polled,
# then every artifact fetched with `curl -L` (downloads answer with a redirect to storage).
#
#   conda_store_curl.sh URL USERNAME NAMESPACE environment.yaml
#
# URL is the server's base URL with its prefix (http://localhost:8080/conda-store). Prints one
# "what value" line per step for the caller to check; artifacts land in the current directory.
set -euo pipefail
URL=$1 USERNAME=$2 NAMESPACE=$3 SPEC=$4

# `field a b` prints .a.b of the JSON on stdin
field() { python3 -c $'import json, sys\nd = json.load(sys.stdin)\nfor k in sys.argv[1:]: d = d[k]\nprint(d)' "$@"; }

echo "version $(curl -sSf "$URL/api/v1/" | field data version)"

curl -sSf -c cookies.txt -H 'Content-Type: application/json' \
  -d "{\"username\": \"$USERNAME\", \"password\": \"password\"}" "$URL/login/" >/dev/null
TOKEN=$(curl -sSf -b cookies.txt -X POST "$URL/api/v1/token/" | field data token)
AUTH="Authorization: Bearer $TOKEN"
echo "namespace $(curl -sSf -H "$AUTH" "$URL/api/v1/permission/" | field data primary_namespace)"

BODY=$(python3 -c 'import json, sys; print(json.dumps({"namespace": sys.argv[1], "specification": open(sys.argv[2]).read()}))' "$NAMESPACE" "$SPEC")
BUILD=$(curl -sSf -X POST -H "$AUTH" -H 'Content-Type: application/json' -d "$BODY" \
  "$URL/api/v1/specification/" | field data build_id)
echo "build $BUILD"

for _ in $(seq 600); do
  STATUS=$(curl -sSf -H "$AUTH" "$URL/api/v1/build/$BUILD/" | field data status)
  case $STATUS in COMPLETED|FAILED|CANCELED) break ;; esac
  sleep 1
done
echo "status $STATUS"

for ARTIFACT in lockfile yaml archive logs; do
  echo "redirect $ARTIFACT $(curl -sS -o /dev/null -w '%{redirect_url}' -H "$AUTH" "$URL/api/v1/build/$BUILD/$ARTIFACT/")"
  curl -sSfL -H "$AUTH" -o "build-$BUILD.$ARTIFACT" "$URL/api/v1/build/$BUILD/$ARTIFACT/"
  echo "size $ARTIFACT $(wc -c < "build-$BUILD.$ARTIFACT")"
done
NAME=$(curl -sSf -H "$AUTH" "$URL/api/v1/build/$BUILD/" | field data specification name)
curl -sSfL -H "$AUTH" -o environment-lock.yml "$URL/api/v1/environment/$NAMESPACE/$NAME/lockfile/"
echo "size environment-lockfile $(wc -c < environment-lock.yml)"
echo "environments $(curl -sSf -H "$AUTH" "$URL/api/v1/environment/?namespace=$NAMESPACE" | field count)"
