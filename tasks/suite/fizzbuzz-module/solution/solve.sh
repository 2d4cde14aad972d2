#!/bin/bash
python3 --version

cat > fizz.py <<'PY'
import sys
def fizzbuzz(n):
    items = []
    for number in range(1, n + 1):
        if number % 15 == 0:
            items.append('FizzBuzz')
        elif number % 3 == 0:
            items.append('Fizz')
        elif number % 5 == 0:
            items.append('Buzz')
        else:
            items.append(str(number))
    return items
if __name__ == '__main__':
    print('\n'.join(fizzbuzz(int(sys.argv[1]))))
PY

mkdir -p out && python3 fizz.py 20 > out/fizz20.txt

tail -n 3 out/fizz20.txt
