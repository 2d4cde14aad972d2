import configparser, sys
config = configparser.ConfigParser()
config.read('app.ini')
want = {('server', 'host'): '0.0.0.0', ('server', 'port'): '9090', ('logging', 'level'): 'debug',
        ('logging', 'file'): 'app.log', ('metrics', 'port'): '9100', ('cache', 'enabled'): 'true', ('cache', 'ttl'): '300'}
for (section, key), value in want.items():
    found = config.get(section, key, fallback=None)
    if found != value:
        sys.exit(f'[{section}] {key} is {found!r}, expected {value!r}')
