#!/bin/bash
# Prepares the workspace (the working directory) before the agent starts.
set -euo pipefail

mkdir -p texts
printf %s 'one two three
four five
' > texts/alpha.txt
printf %s 'a b c d e f g h i j
' > texts/beta.txt
printf %s '  spaced   out  words 

last
' > texts/gamma.txt
