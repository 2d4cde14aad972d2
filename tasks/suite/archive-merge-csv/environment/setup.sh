#!/bin/bash
# Prepares the workspace (the working directory) before the agent starts.
set -euo pipefail

mkdir -p incoming staging/parts
printf 'id,value\n3,c\n10,j\n' > staging/parts/part-1.csv
printf 'id,value\n1,a\n22,v\n' > staging/parts/part-2.csv
printf 'id,value\n2,b\n' > staging/parts/part-3.csv
tar -czf incoming/batch.tar.gz -C staging parts
rm -rf staging
