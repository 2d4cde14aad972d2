#!/bin/bash
# Prepares the workspace (the working directory) before the agent starts.
set -euo pipefail

mkdir -p lib data
cat > lib/text.sh <<'EOF'
# Text helpers: load them with `source lib/text.sh`.
slugify() {
  tr 'A-Z' 'a-z' | sed -E 's/[^a-z0-9]+/-/g; s/^-+//; s/-+$//'
}
dedupe() {
  awk '!seen[$0]++'
}
EOF
cat > data/titles.txt <<'TXT'
Hello World
Hello, World!
  Shell Functions 101 
shell functions 101
C++ & Make
One more: title
TXT
