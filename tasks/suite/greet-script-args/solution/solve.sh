#!/bin/bash
ls -la

cat > greet.sh <<'SH'
#!/bin/bash
if [ "$#" -ne 1 ]; then
  echo 'usage: greet.sh NAME' >&2
  exit 2
fi
echo "Hello, $1!"
SH

chmod +x greet.sh

./greet.sh World; ./greet.sh; echo "exit $?"
