#!/bin/bash
# Prepares the workspace (the working directory) before the agent starts.
set -euo pipefail

mkdir -p data
cat > data/events.jsonl <<'JSONL'
{"type": "login", "user": "u1", "ms": 120}
{"type": "view", "user": "u2", "ms": 30}
{"type": "view", "user": "u1", "ms": 25}
this line is not json
{"type": "purchase", "user": "u3", "ms": 410}
{"type": "view", "user": "u3", "ms": 18}
{"type": "logout", "user": "u1", "ms": 5}
{"type": "view"
{"type": "login", "user": "u4", "ms": 140}

JSONL
