#!/bin/bash
# Prepares the workspace (the working directory) before the agent starts.
set -euo pipefail

git init -q -b main lib
git -C lib config user.name 'Dev One'
git -C lib config user.email dev@example.com
cat > lib/lib.py <<'FILE'
VERSION = "0.9.0"
FILE
git -C lib add -A
GIT_AUTHOR_DATE=2024-02-01T12:00:00+00:00 GIT_COMMITTER_DATE=2024-02-01T12:00:00+00:00 git -C lib commit -q -m 'Prototype'
git -C lib tag v0.9.0
cat > lib/lib.py <<'FILE'
VERSION = "0.10.0"
FILE
git -C lib add -A
GIT_AUTHOR_DATE=2024-02-02T12:00:00+00:00 GIT_COMMITTER_DATE=2024-02-02T12:00:00+00:00 git -C lib commit -q -m 'Beta'
git -C lib tag v0.10.0
cat > lib/lib.py <<'FILE'
VERSION = "1.0.0"
FILE
git -C lib add -A
GIT_AUTHOR_DATE=2024-02-03T12:00:00+00:00 GIT_COMMITTER_DATE=2024-02-03T12:00:00+00:00 git -C lib commit -q -m 'Initial version'
git -C lib tag v1.0.0
cat > lib/lib.py <<'FILE'
VERSION = "1.1.0"
FILE
git -C lib add -A
GIT_AUTHOR_DATE=2024-02-04T12:00:00+00:00 GIT_COMMITTER_DATE=2024-02-04T12:00:00+00:00 git -C lib commit -q -m 'Bump version to 1.1.0'
git -C lib tag v1.1.0
cat > lib/lib.py <<'FILE'
VERSION = "1.2.0"
FILE
git -C lib add -A
GIT_AUTHOR_DATE=2024-02-05T12:00:00+00:00 GIT_COMMITTER_DATE=2024-02-05T12:00:00+00:00 git -C lib commit -q -m 'Bump version to 1.2.0'
cat > lib/lib.py <<'FILE'
VERSION = "1.3.0.dev0"
FILE
git -C lib add -A
GIT_AUTHOR_DATE=2024-02-06T12:00:00+00:00 GIT_COMMITTER_DATE=2024-02-06T12:00:00+00:00 git -C lib commit -q -m 'Start 1.3 development'
