#!/bin/bash
ls texts

mkdir -p bin out
cat > bin/wordcount <<'SH'
#!/bin/bash
wc -w < "$1" | tr -d ' '
SH
chmod +x bin/wordcount

for file in texts/*; do echo "$(basename "$file") $(bin/wordcount "$file")"; done | sort > out/counts.txt

cat out/counts.txt
