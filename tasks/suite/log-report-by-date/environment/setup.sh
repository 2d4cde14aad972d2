#!/bin/bash
# Prepares the workspace (the working directory) before the agent starts.
set -euo pipefail

mkdir -p logs
cat > logs/server-a.log <<'LOG'
2024-02-29T23:59:00 INFO rotating
2024-03-01T00:10:00 INFO started
2024-03-01T01:00:00 WARN slow disk
2024-03-01T02:00:00 ERROR disk full
2024-03-01T03:00:00 INFO recovered
2024-03-02T00:00:00 ERROR again
LOG
cat > logs/server-b.log <<'LOG'
2024-03-01T05:00:00 INFO started
2024-03-01T06:00:00 WARN high load
2024-03-01T07:00:00 WARN high load
2024-03-02T08:00:00 INFO started
LOG
echo '2024-03-01T00:00:00 DEBUG not a log file' > logs/readme.txt
