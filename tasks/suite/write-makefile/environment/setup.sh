#!/bin/bash
# Prepares the workspace (the working directory) before the agent starts.
set -euo pipefail

mkdir -p app
cat > app/util.h <<'EOF'
#ifndef UTIL_H
#define UTIL_H
int triple(int value);
#endif
EOF
cat > app/util.c <<'EOF'
#include "util.h"

int triple(int value) { return 3 * value; }
EOF
cat > app/main.c <<'EOF'
#include <stdio.h>
#include "util.h"

int main(void) {
  printf("triple(14) = %d\n", triple(14));
  return 0;
}
EOF
