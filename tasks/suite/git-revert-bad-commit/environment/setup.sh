#!/bin/bash
# Prepares the workspace (the working directory) before the agent starts.
set -euo pipefail

git init -q -b main parser
git -C parser config user.name 'Dev One'
git -C parser config user.email dev@example.com
cat > parser/parse.py <<'FILE'
import sys

print(int(sys.argv[1]))
FILE
git -C parser add -A
GIT_AUTHOR_DATE=2024-02-01T12:00:00+00:00 GIT_COMMITTER_DATE=2024-02-01T12:00:00+00:00 git -C parser commit -q -m 'Add number parser'
cat > parser/README.md <<'FILE'
Parses numbers.
FILE
git -C parser add -A
GIT_AUTHOR_DATE=2024-02-02T12:00:00+00:00 GIT_COMMITTER_DATE=2024-02-02T12:00:00+00:00 git -C parser commit -q -m 'Add readme'
cat > parser/parse.py <<'FILE'
import sys

print(int(sys.argv[1]) + 1)
FILE
git -C parser add -A
GIT_AUTHOR_DATE=2024-02-03T12:00:00+00:00 GIT_COMMITTER_DATE=2024-02-03T12:00:00+00:00 git -C parser commit -q -m 'Break the number parser'
cat > parser/CHANGELOG.md <<'FILE'
- 0.2: faster
FILE
git -C parser add -A
GIT_AUTHOR_DATE=2024-02-04T12:00:00+00:00 GIT_COMMITTER_DATE=2024-02-04T12:00:00+00:00 git -C parser commit -q -m 'Add changelog'
