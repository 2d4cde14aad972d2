#!/bin/bash
# Prepares the workspace (the working directory) before the agent starts.
set -euo pipefail

mkdir -p data
cat > data/raw.csv <<'CSV'
name , joined , plan
 Ana ,2024-01-05, pro

Ben, 07/02/2024 ,free
  Cy  , 2023-12-31 , pro 

Dee,31/10/2023,team
Eve , 01/01/2024, free
CSV
