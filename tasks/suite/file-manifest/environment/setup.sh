#!/bin/bash
# Prepares the workspace (the working directory) before the agent starts.
set -euo pipefail

mkdir -p assets/css assets/js assets/img
printf 'body { margin: 0; }\n' > assets/css/site.css
printf 'console.log("ready");\n' > assets/js/app.js
printf '\x89PNG\r\n\x1a\n\x00\x00' > assets/img/logo.png
printf 'User-agent: *\n' > assets/robots.txt
