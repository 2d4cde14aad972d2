#!/bin/bash
# Prepares the workspace (the working directory) before the agent starts.
set -euo pipefail

mkdir -p greeter
cat > greeter/Makefile <<'EOF'
greet: greet.c
    $(CC) -O2 -o greet greet.c

clean:
    rm -f greet

.PHONY: clean
EOF
cat > greeter/greet.c <<'EOF'
#include <stdio.h>

int main(void) {
  puts("Greetings from a fixed Makefile");
  return 0;
}
EOF
