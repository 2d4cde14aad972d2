#!/bin/bash
# Prepares the workspace (the working directory) before the agent starts.
set -euo pipefail

mkdir -p tools/bin tools/lib data
cat > tools/activate <<'EOF'
# Puts this project's tools on the PATH: use `. tools/activate`.
TOOLS_HOME="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export TOOLS_HOME
export PATH="$TOOLS_HOME/bin:$PATH"
EOF
cat > tools/bin/csvsum <<'EOF'
#!/bin/bash
# csvsum COLUMN FILE: the sum of a CSV column, with two decimals.
set -eu
: "${TOOLS_HOME:?run . tools/activate first}"
exec awk -F, -v column="$1" -f "$TOOLS_HOME/lib/sum.awk" "$2"
EOF
chmod +x tools/bin/csvsum
cat > tools/lib/sum.awk <<'EOF'
NR == 1 { for (i = 1; i <= NF; i++) if ($i == column) position = i; next }
{ total += $position }
END { printf "total %s: %.2f\n", column, total }
EOF
cat > data/ledger.csv <<'CSV'
date,amount,memo
2024-01-01,1200.00,salary
2024-01-03,-45.20,groceries
2024-01-07,-12.99,music
2024-01-10,-300.00,rent share
2024-01-15,80.15,refund
CSV
