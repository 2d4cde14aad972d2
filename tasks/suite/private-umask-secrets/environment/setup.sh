#!/bin/bash
# Prepares the workspace (the working directory) before the agent starts.
set -euo pipefail

mkdir -p config
printf 'key-7f3a9c\n' > config/api-key.source
printf 'hunter2\n' > config/db-password.source
chmod 644 config/*.source
