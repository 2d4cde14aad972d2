#!/bin/bash
ls -R site docs

cat > backup.sh <<'SH'
#!/bin/bash
# Archives a folder into backups/NAME.tar.gz and prints the archive's path.
set -euo pipefail
folder="${1%/}"
mkdir -p backups
archive="backups/$(basename "$folder").tar.gz"
tar -czf "$archive" -C "$(dirname "$folder")" "$(basename "$folder")"
echo "$archive"
SH
chmod +x backup.sh

./backup.sh site/

tar -tzf backups/site.tar.gz
