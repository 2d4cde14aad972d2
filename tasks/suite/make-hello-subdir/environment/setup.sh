#!/bin/bash
# Prepares the workspace (the working directory) before the agent starts.
set -euo pipefail

mkdir -p project
cat > project/Makefile <<'EOF'
CC = gcc
CFLAGS = -Wall -O2

hello: hello.o
	$(CC) $(CFLAGS) -o $@ $^

hello.o: hello.c greeting.h
	$(CC) $(CFLAGS) -c hello.c

clean:
	rm -f hello hello.o
EOF
cat > project/greeting.h <<'EOF'
#define GREETING "Hello from make"
#define VERSION 3
EOF
cat > project/hello.c <<'EOF'
#include <stdio.h>
#include "greeting.h"

int main(void) {
  printf("%s, version %d\n", GREETING, VERSION);
  return 0;
}
EOF
