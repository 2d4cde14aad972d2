#!/bin/bash
ls project && cat project/Makefile

cd project

make

mkdir -p ../out && ./hello > ../out/hello.txt

cat ../out/hello.txt
