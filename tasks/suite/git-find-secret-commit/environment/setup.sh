#!/bin/bash
# Prepares the workspace (the working directory) before the agent starts.
set -euo pipefail

git init -q -b main history
git -C history config user.name 'Dev One'
git -C history config user.email dev@example.com
cat > history/README.md <<'FILE'
# Deployer
FILE
git -C history add -A
GIT_AUTHOR_DATE=2024-02-01T12:00:00+00:00 GIT_COMMITTER_DATE=2024-02-01T12:00:00+00:00 git -C history commit -q -m 'Initial commit'
cat > history/config.env <<'FILE'
APP=demo
FILE
git -C history add -A
GIT_AUTHOR_DATE=2024-02-02T12:00:00+00:00 GIT_COMMITTER_DATE=2024-02-02T12:00:00+00:00 git -C history commit -q -m 'Add config'
cat > history/run.sh <<'FILE'
#!/bin/bash
. ./config.env
echo "$APP"
FILE
git -C history add -A
GIT_AUTHOR_DATE=2024-02-03T12:00:00+00:00 GIT_COMMITTER_DATE=2024-02-03T12:00:00+00:00 git -C history commit -q -m 'Add run script'
mkdir -p history/deploy
cat > history/deploy/settings.env <<'FILE'
REGION=eu
SECRET_TOKEN=abc123
FILE
git -C history add -A
GIT_AUTHOR_DATE=2024-02-04T12:00:00+00:00 GIT_COMMITTER_DATE=2024-02-04T12:00:00+00:00 git -C history commit -q -m 'Configure deploy'
cat > history/README.md <<'FILE'
# Deployer

Run ./run.sh to deploy.
FILE
git -C history add -A
GIT_AUTHOR_DATE=2024-02-05T12:00:00+00:00 GIT_COMMITTER_DATE=2024-02-05T12:00:00+00:00 git -C history commit -q -m 'Describe deployment'
mkdir -p history/deploy
cat > history/deploy/settings.env <<'FILE'
REGION=eu
FILE
git -C history add -A
GIT_AUTHOR_DATE=2024-02-06T12:00:00+00:00 GIT_COMMITTER_DATE=2024-02-06T12:00:00+00:00 git -C history commit -q -m 'Remove secret from settings'
mkdir -p history/tests
cat > history/tests/test_run.sh <<'FILE'
#!/bin/bash
./run.sh | grep -q demo
FILE
git -C history add -A
GIT_AUTHOR_DATE=2024-02-07T12:00:00+00:00 GIT_COMMITTER_DATE=2024-02-07T12:00:00+00:00 git -C history commit -q -m 'Add tests'
