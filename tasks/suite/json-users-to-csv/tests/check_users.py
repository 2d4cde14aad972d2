import csv, json, sys
users = json.load(open('data/users.json'))
want = [['id', 'name', 'email']] + [[str(u['id']), u['name'], u['email']] for u in sorted(users, key=lambda u: u['id'])]
got = list(csv.reader(open('out/users.csv', newline='')))
if got != want:
    sys.exit(f'expected rows {want}, found {got}')
