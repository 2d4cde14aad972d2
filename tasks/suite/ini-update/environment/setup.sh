#!/bin/bash
# Prepares the workspace (the working directory) before the agent starts.
set -euo pipefail

cat > app.ini <<'INI'
; main server settings
[server]
host = 0.0.0.0
port = 8080

[logging]
; one of debug, info, warning
level = info
file = app.log

[metrics]
port = 9100
INI
