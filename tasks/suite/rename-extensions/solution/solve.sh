#!/bin/bash
find photos -type f | sort

find photos -type f -name '*.jpeg' -print0 | while IFS= read -r -d '' file; do
  mv "$file" "${file%.jpeg}.jpg"
done

find photos -type f | sort
