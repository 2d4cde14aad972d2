#!/bin/bash
# Prepares the workspace (the working directory) before the agent starts.
set -euo pipefail

mkdir -p notes
cat > notes/text.txt <<'TEXT'
The quick brown fox jumps over the lazy dog. The dog sleeps.
A fox is quick; the fox is clever. Dogs and foxes: the end.
The end is near, the fox said, and the dog agreed.
Quick thinking: a dog, a fox and an end.
TEXT
