#!/bin/bash
# Prepares the workspace (the working directory) before the agent starts.
set -euo pipefail

git init -q -b main service
git -C service config user.name 'Dev One'
git -C service config user.email dev@example.com
cat > service/server.py <<'FILE'
print("serving")
FILE
git -C service add -A
GIT_AUTHOR_DATE=2024-02-01T12:00:00+00:00 GIT_COMMITTER_DATE=2024-02-01T12:00:00+00:00 git -C service commit -q -m 'Initial service'
cat > service/health.txt <<'FILE'
ok
FILE
git -C service add -A
GIT_AUTHOR_DATE=2024-02-02T12:00:00+00:00 GIT_COMMITTER_DATE=2024-02-02T12:00:00+00:00 git -C service commit -q -m 'Add health check'
