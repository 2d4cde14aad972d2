#!/bin/bash
# Prepares the workspace (the working directory) before the agent starts.
set -euo pipefail

mkdir -p site/css docs
echo '<h1>Home</h1>' > site/index.html
echo 'body { color: black; }' > site/css/main.css
echo 'How to use the site.' > docs/guide.txt
