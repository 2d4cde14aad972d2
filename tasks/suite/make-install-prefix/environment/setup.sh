#!/bin/bash
# Prepares the workspace (the working directory) before the agent starts.
set -euo pipefail

mkdir -p libsrc
cat > libsrc/Makefile <<'EOF'
PREFIX ?= /usr/local

tool: tool.c
	$(CC) -O2 -o tool tool.c

install: tool
	mkdir -p $(PREFIX)/bin $(PREFIX)/share/tool
	cp tool $(PREFIX)/bin/tool
	echo 2.1 > $(PREFIX)/share/tool/VERSION

clean:
	rm -f tool

.PHONY: install clean
EOF
cat > libsrc/tool.c <<'EOF'
#include <stdio.h>

int main(void) {
  puts("tool 2.1");
  return 0;
}
EOF
