#!/usr/bin/env bash
# Frontend CI: install exactly the locked deps, regenerate the API types from the FastAPI app,
# the fast hygiene checks (typecheck, ESLint, Prettier), build the production bundle, run Vitest,
# then the browser end-to-end test against a real Ray Serve app (tests/e2e, pytest). Needs: Node
# >= 20 with npm, Debian's chromium (/usr/bin/chromium), and the Python project installed
# (pip install -e '.[dev]').
# FRONTEND_E2E=0 skips the browser suite (e.g. when the caller's pytest run includes tests/e2e).
set -euo pipefail
cd "$(dirname "$0")"

echo "frontend-ci: npm ci"
npm ci --no-audit --no-fund

echo "frontend-ci: generate API types from the FastAPI app's OpenAPI document"
npm run --silent gen:api
if ! git diff --quiet -- src/api/schema.d.ts 2>/dev/null; then
  echo "frontend-ci: note: src/api/schema.d.ts changed against the commit (the API changed); checking and building with the new types" >&2
fi

echo "frontend-ci: typecheck (tsc --noEmit)"
npx tsc --noEmit

echo "frontend-ci: lint (eslint)"
npx eslint .

echo "frontend-ci: format check (prettier --check)"
npx prettier --check .

echo "frontend-ci: build"
npx vite build

echo "frontend-ci: vitest"
npx vitest run

if [ "${FRONTEND_E2E:-1}" != "0" ]; then
  echo "frontend-ci: browser end-to-end (tests/e2e)"
  cd ..
  # required here: a missing prerequisite fails instead of skipping
  RAYAPP_E2E_REQUIRED=1 python -m pytest tests/e2e -q -rs
fi
