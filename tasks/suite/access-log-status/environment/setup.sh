#!/bin/bash
# Prepares the workspace (the working directory) before the agent starts.
set -euo pipefail

mkdir -p logs
cat > logs/access.log <<'LOG'
10.0.0.1 - - [01/May/2024:10:00:00 +0000] "GET / HTTP/1.1" 200 512
10.0.0.2 - - [01/May/2024:10:00:01 +0000] "GET /missing HTTP/1.1" 404 0
10.0.0.1 - - [01/May/2024:10:00:02 +0000] "POST /login HTTP/1.1" 302 0
10.0.0.3 - - [01/May/2024:10:00:03 +0000] "GET /about HTTP/1.1" 200 1024
10.0.0.4 - - [01/May/2024:10:00:04 +0000] "GET /api/items?id=5 HTTP/1.1" 500 87
10.0.0.2 - - [01/May/2024:10:00:05 +0000] "GET / HTTP/1.1" 200 512
10.0.0.5 - frank [01/May/2024:10:00:06 +0000] "GET /admin HTTP/1.1" 403 0
10.0.0.1 - - [01/May/2024:10:00:07 +0000] "GET /favicon.ico HTTP/1.1" 404 0
LOG
