#!/bin/bash
python3 -c "import argparse; print(argparse.__name__)"

cat > convert.py <<'PY'
import argparse
parser = argparse.ArgumentParser(description='Convert temperatures.')
group = parser.add_mutually_exclusive_group(required=True)
group.add_argument('--celsius', type=float)
group.add_argument('--fahrenheit', type=float)
arguments = parser.parse_args()
if arguments.celsius is not None:
    print(f'{arguments.celsius * 9 / 5 + 32:.1f}')
else:
    print(f'{(arguments.fahrenheit - 32) * 5 / 9:.1f}')
PY

python3 convert.py --celsius 100 && python3 convert.py --fahrenheit 32
