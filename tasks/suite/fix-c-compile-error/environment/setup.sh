#!/bin/bash
# Prepares the workspace (the working directory) before the agent starts.
set -euo pipefail

mkdir -p calc
cat > calc/Makefile <<'EOF'
calc: calc.c
	$(CC) -Wall -O2 -o calc calc.c

clean:
	rm -f calc
EOF
cat > calc/calc.c <<'EOF'
#include <stdio.h>
#include <stdlib.h>

static int apply(int a, char op, int b) {
  switch (op) {
  case '+': return a + b
  case '-': return a - b;
  case '*': return a + b;
  }
  fprintf(stderr, "unknown operator %c\n", op);
  exit(2);
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: calc A OP B\n");
    return 2;
  }
  printf("%d\n", apply(atoi(argv[1]), argv[2][0], atoi(argv[3])));
  return 0;
}
EOF
