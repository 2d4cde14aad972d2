#!/bin/bash
make -C greeter; cat -A greeter/Makefile

sed -i 's/^    /\t/' greeter/Makefile

make -C greeter

mkdir -p out && greeter/greet > out/greet.txt
