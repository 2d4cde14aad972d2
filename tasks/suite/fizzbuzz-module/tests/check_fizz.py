import subprocess, sys
sys.path.insert(0, '.')
from fizz import fizzbuzz
want = ['1', '2', 'Fizz', '4', 'Buzz', 'Fizz', '7', '8', 'Fizz', 'Buzz', '11', 'Fizz', '13', '14', 'FizzBuzz']
if fizzbuzz(15) != want:
    sys.exit(f'fizzbuzz(15) returned {fizzbuzz(15)}')
if fizzbuzz(0) != []:
    sys.exit('fizzbuzz(0) should be []')
printed = subprocess.run([sys.executable, 'fizz.py', '5'], capture_output=True, text=True).stdout.split()
if printed != want[:5]:
    sys.exit(f'python3 fizz.py 5 printed {printed}')
