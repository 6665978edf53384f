#!/bin/bash
# Instructions per logged-out GET / under callgrind: run with N=1000 and N=3000 and divide the
# difference of the two totals by 2000. Usage: callgrind-start-page.sh BINARY LABEL N (writes /tmp/cg-LABEL.out).
# $1 = binary, $2 = label, $3 = requests
BIN=$1; L=$2; N=$3
D=$(mktemp -d)
cat > $D/c.toml <<T
[server]
bind = "127.0.0.1:5077"
secret_key = "callgrind-secret-key-that-is-long-enough-0123"
[database]
url = "sqlite://$D/db.sqlite"
[providers.github]
client_id = "x"
client_secret = "y"
T
cd $D
LOGINWITH_LOG=warn valgrind --tool=callgrind --callgrind-out-file=/tmp/cg-$L.out $BIN --config $D/c.toml serve > $D/log 2>&1 &
VP=$!
for i in $(seq 1 200); do curl -s -o /dev/null http://127.0.0.1:5077/healthz && break; sleep 0.5; done
python3 - <<P
import http.client
c=http.client.HTTPConnection("127.0.0.1",5077)
for i in range($N):
    c.request("GET","/")
    r=c.getresponse(); r.read()
P
kill -INT $VP; wait $VP 2>/dev/null
grep -E "^summary" /tmp/cg-$L.out | head -2 | sed "s/^/$L /"
