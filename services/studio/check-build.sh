#!/bin/sh
# Rebuilds the Studio's front end from its lockfile and fails if the result differs from the
# build committed in the Python package (src/drift_studio/static), after its type check and
# Vitest tests. CI runs it (.ci/run); run it yourself after changing services/studio/web.
#   sh services/studio/check-build.sh           check
#   sh services/studio/check-build.sh --write   rebuild into the package (then commit it)
set -eu
cd "$(dirname "$0")/web"
if ! command -v npm >/dev/null 2>&1; then
  echo "check-build: npm (Node 20.19+) is needed to rebuild the Studio; install Node.js" >&2
  exit 1
fi
npm ci --no-audit --no-fund --loglevel=error
npm run typecheck
npx vitest run
if [ "${1:-}" = "--write" ]; then
  npm run build
  exit 0
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
npm run build -- --outDir "$out" --emptyOutDir
if ! diff -r "$out" ../src/drift_studio/static; then
  echo "check-build: the committed Studio build differs from a fresh one: run 'sh services/studio/check-build.sh --write' and commit services/studio/src/drift_studio/static" >&2
  exit 1
fi
echo "check-build: the committed Studio build matches its sources"
