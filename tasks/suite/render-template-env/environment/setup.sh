#!/bin/bash
# Prepares the workspace (the working directory) before the agent starts.
set -euo pipefail

mkdir -p templates
cat > render.sh <<'EOF'
#!/bin/bash
# render.sh TEMPLATE: prints the template with ${SERVER_NAME}, ${PORT} and ${ROOT_DIR} filled in from the environment.
set -eu
: "${SERVER_NAME:?SERVER_NAME is not set}" "${PORT:?PORT is not set}" "${ROOT_DIR:?ROOT_DIR is not set}"
python3 -c 'import os, string, sys; sys.stdout.write(string.Template(open(sys.argv[1]).read()).substitute(os.environ))' "$1"
EOF
chmod +x render.sh
cat > templates/site.conf.tmpl <<'EOF'
server {
    listen ${PORT};
    server_name ${SERVER_NAME};
    root ${ROOT_DIR};
}
EOF
