#!/bin/bash
# Prepares the workspace (the working directory) before the agent starts.
set -euo pipefail

mkdir -p data
cat > data/sales.csv <<'CSV'
date,region,amount
2024-01-03,north,120.50
2024-01-03,south,80.25
2024-01-04,east,42.10
2024-01-04,north,19.99
2024-01-05,west,300.00
2024-01-05,south,15.75
2024-01-06,east,7.30
2024-01-06,north,60.01
2024-01-07,west,12.12
2024-01-07,south,100.00
2024-01-08,east,0.60
2024-01-08,central,55.55
CSV
