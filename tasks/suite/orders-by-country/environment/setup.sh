#!/bin/bash
# Prepares the workspace (the working directory) before the agent starts.
set -euo pipefail

mkdir -p data
cat > data/customers.csv <<'CSV'
id,name,country
1,Acme,DE
2,Globex,US
3,Initech,US
4,Umbrella,FR
5,Hooli,NL
CSV
cat > data/orders.csv <<'CSV'
order_id,customer_id,total
100,2,10.00
101,1,5.50
102,2,7.25
103,3,99.99
104,1,12.00
105,4,3.10
106,2,8.80
107,3,1.00
CSV
