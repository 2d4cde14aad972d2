#!/bin/bash
# Prepares the workspace (the working directory) before the agent starts.
set -euo pipefail

git init -q -b main repo
git -C repo config user.name 'Dev One'
git -C repo config user.email dev@example.com
cat > repo/README.md <<'FILE'
# Tool
FILE
git -C repo add -A
GIT_AUTHOR_DATE=2024-02-01T12:00:00+00:00 GIT_COMMITTER_DATE=2024-02-01T12:00:00+00:00 git -C repo commit -q -m 'Initial commit'
cat > repo/main.sh <<'FILE'
#!/bin/bash
echo tool
FILE
git -C repo add -A
GIT_AUTHOR_DATE=2024-02-02T12:00:00+00:00 GIT_COMMITTER_DATE=2024-02-02T12:00:00+00:00 git -C repo commit -q -m 'Add main script'
cat > repo/README.md <<'FILE'
# Tool

A small tool.
FILE
git -C repo add -A
GIT_AUTHOR_DATE=2024-02-03T12:00:00+00:00 GIT_COMMITTER_DATE=2024-02-03T12:00:00+00:00 git -C repo commit -q -m 'Fix typo'
