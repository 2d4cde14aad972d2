#!/bin/bash
# Prepares the workspace (the working directory) before the agent starts.
set -euo pipefail

mkdir -p config data/prod data/dev
cat > config/env.sh <<'EOF'
# Settings of the production environment: load with `source config/env.sh`.
export APP_MODE=production
export DATA_DIR=data/prod
export REPORT_TITLE="Weekly sales"
EOF
cat > report.sh <<'EOF'
#!/bin/bash
# Writes the report for the configured environment. Needs the settings of config/env.sh in the environment.
set -eu
: "${APP_MODE:?APP_MODE is not set: source config/env.sh first}"
: "${DATA_DIR:?DATA_DIR is not set: source config/env.sh first}"
echo "${REPORT_TITLE:-Report} ($APP_MODE)"
for file in "$DATA_DIR"/*.csv; do
  echo "$(basename "$file" .csv): $(($(wc -l < "$file") - 1)) rows"
done
EOF
chmod +x report.sh
printf 'id\n1\n2\n3\n' > data/prod/orders.csv
printf 'id\n1\n2\n' > data/prod/customers.csv
printf 'id\n1\n' > data/dev/orders.csv
