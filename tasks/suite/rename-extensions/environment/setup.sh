#!/bin/bash
# Prepares the workspace (the working directory) before the agent starts.
set -euo pipefail

mkdir -p photos/2023 "photos/2024/summer trip"
for name in beach.jpeg city.jpeg 2023/snow.jpeg "2024/summer trip/sea view.jpeg" "2024/summer trip/boat.jpeg"; do
  printf 'image %s\n' "$name" > "photos/$name"
done
echo 'not an image' > photos/notes.txt
echo 'keep me' > photos/2023/old.jpeg.txt
