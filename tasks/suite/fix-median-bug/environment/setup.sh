#!/bin/bash
# Prepares the workspace (the working directory) before the agent starts.
set -euo pipefail

mkdir -p data
cat > stats.py <<'EOF'
import sys


def mean(values):
    return sum(values) / len(values)


def median(values):
    middle = len(values) // 2
    return values[middle]


numbers = [float(line) for line in open(sys.argv[1]) if line.strip()]
print(f'mean {mean(numbers):.2f}')
print(f'median {median(numbers):.2f}')
EOF
printf '7\n1\n3\n10\n4\n9\n' > data/numbers.txt
