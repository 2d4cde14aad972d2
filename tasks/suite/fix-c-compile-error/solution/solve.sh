#!/bin/bash
make -C calc 2>&1 | head -n 20

sed -i 's/return a + b$/return a + b;/' calc/calc.c

make -C calc && calc/calc 7 + 5 && calc/calc 6 '*' 7

sed -i "s/case '\*': return a + b;/case '*': return a * b;/" calc/calc.c

make -C calc && calc/calc 6 '*' 7
