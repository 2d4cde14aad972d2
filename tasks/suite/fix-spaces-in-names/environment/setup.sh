#!/bin/bash
# Prepares the workspace (the working directory) before the agent starts.
set -euo pipefail

mkdir -p reports
cat > sizes.sh <<'EOF'
#!/bin/bash
# Prints "LINES NAME" for every .txt file in the folder given as argument, sorted by name.
for f in $(ls "$1"/*.txt); do
  echo "$(wc -l < $f) $(basename $f)"
done | sort -k2
EOF
chmod +x sizes.sh
printf 'a\nb\nc\n' > 'reports/q1 summary.txt'
printf 'a\nb\n' > 'reports/q2 summary.txt'
printf 'x\n' > reports/notes.txt
printf 'ignored\n' > reports/data.csv
