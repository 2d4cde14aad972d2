#!/bin/bash
# Prepares the workspace (the working directory) before the agent starts.
set -euo pipefail

mkdir -p data
printf '%s\n' 'alice@example.com' ' Bob@Example.com' 'carol@example.org ' 'ALICE@example.com' '' 'dave@example.net' 'bob@example.com' '  carol@EXAMPLE.org' 'erin@example.com' '' 'Dave@example.net ' 'frank@example.com' > data/emails.txt
