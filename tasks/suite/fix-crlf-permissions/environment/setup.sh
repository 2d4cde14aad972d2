#!/bin/bash
# Prepares the workspace (the working directory) before the agent starts.
set -euo pipefail

mkdir -p tools data
printf '#!/bin/bash\r\n# Reports how many data files there are.\r\ncount=$(ls data | wc -l)\r\necho "report: $count files"\r\n' > tools/run.sh
chmod 644 tools/run.sh
touch data/a.csv data/b.csv data/c.csv
