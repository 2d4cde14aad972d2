#!/bin/bash
ls app && cat app/util.h

cat > app/Makefile <<'MAKE'
CC = gcc
CFLAGS = -Wall -O2
OBJECTS = main.o util.o
app: $(OBJECTS)
	$(CC) $(CFLAGS) -o $@ $(OBJECTS)
%.o: %.c util.h
	$(CC) $(CFLAGS) -c $< -o $@
clean:
	rm -f app $(OBJECTS)
.PHONY: clean
MAKE

make -C app && ./app/app
