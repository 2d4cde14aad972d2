#!/bin/bash
# Prepares the workspace (the working directory) before the agent starts.
set -euo pipefail

git init -q -b main docs
git -C docs config user.name 'Dev One'
git -C docs config user.email dev@example.com
cat > docs/guide.md <<'FILE'
# Guide

Step one.
FILE
git -C docs add -A
GIT_AUTHOR_DATE=2024-02-01T12:00:00+00:00 GIT_COMMITTER_DATE=2024-02-01T12:00:00+00:00 git -C docs commit -q -m 'Add guide'
cat > docs/guide.md <<'EOF'
# Guide

Step one.
Step two.
EOF
cat > docs/faq.md <<'EOF'
# FAQ

None yet.
EOF
echo 'scratch' > docs/notes.tmp
