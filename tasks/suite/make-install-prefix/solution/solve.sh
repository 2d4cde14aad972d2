#!/bin/bash
cat libsrc/Makefile

cd libsrc

export PREFIX="$(dirname "$PWD")/dist"

make

make install

"$PREFIX/bin/tool"
