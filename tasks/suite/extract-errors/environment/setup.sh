#!/bin/bash
# Prepares the workspace (the working directory) before the agent starts.
set -euo pipefail

mkdir -p logs
cat > logs/app.log <<'LOG'
2024-05-01T10:00:07 INFO [web] request served
2024-05-01T10:00:03 ERROR [db] connection lost
2024-05-01T09:59:58 WARN [cache] miss rate high
2024-05-01T10:02:00 ERROR [web] upstream timeout after 30s
2024-05-01T09:58:12 ERROR [auth] token expired for user 42
2024-05-01T10:01:30 INFO [db] reconnected
2024-05-01T10:03:45 ERROR [db] deadlock detected [retrying]
2024-05-01T10:00:05 DEBUG [web] ERROR page template loaded
LOG
