#!/bin/bash
cat sizes.sh && ./sizes.sh reports

cat > sizes.sh <<'SH'
#!/bin/bash
# Prints "LINES NAME" for every .txt file in the folder given as argument, sorted by name.
for f in "$1"/*.txt; do
  echo "$(wc -l < "$f") $(basename "$f")"
done | sort -k2
SH

mkdir -p out && ./sizes.sh reports > out/sizes.txt

cat out/sizes.txt
