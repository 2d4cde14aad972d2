#!/bin/bash
# Prepares the workspace (the working directory) before the agent starts.
set -euo pipefail

git init -q -b main site
git -C site config user.name 'Dev One'
git -C site config user.email dev@example.com
cat > site/config.txt <<'FILE'
theme = light
lang = en
FILE
cat > site/index.html <<'FILE'
<h1>v1</h1>
FILE
git -C site add -A
GIT_AUTHOR_DATE=2024-02-01T12:00:00+00:00 GIT_COMMITTER_DATE=2024-02-01T12:00:00+00:00 git -C site commit -q -m 'Initial site'
git -C site checkout -q -b feature
cat > site/config.txt <<'FILE'
theme = dark
lang = en
font = serif
FILE
git -C site add -A
GIT_AUTHOR_DATE=2024-02-02T12:00:00+00:00 GIT_COMMITTER_DATE=2024-02-02T12:00:00+00:00 git -C site commit -q -m 'Dark theme'
git -C site checkout -q main
cat > site/config.txt <<'FILE'
theme = light
lang = de
FILE
git -C site add -A
GIT_AUTHOR_DATE=2024-02-03T12:00:00+00:00 GIT_COMMITTER_DATE=2024-02-03T12:00:00+00:00 git -C site commit -q -m 'Use German'
cat > site/about.html <<'FILE'
<h1>About</h1>
FILE
git -C site add -A
GIT_AUTHOR_DATE=2024-02-04T12:00:00+00:00 GIT_COMMITTER_DATE=2024-02-04T12:00:00+00:00 git -C site commit -q -m 'Add about page'
