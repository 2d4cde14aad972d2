#!/bin/bash
# Prepares the workspace (the working directory) before the agent starts.
set -euo pipefail

mkdir -p release
printf 'archive bytes' > release/app-1.0.tar.gz
printf 'zip bytes' > release/app-1.0.zip
printf 'Release notes for 1.0\n' > release/README.txt
