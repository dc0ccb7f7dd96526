#!/bin/sh
# examples/hello: what a workload started by agentd sees of itself, then a
# web server on its own loopback, fetched from inside.
echo "hello from $(hostname): I am pid $$ in my own pid namespace"
echo "processes I can see: $(ls /proc | grep -c '^[0-9]')"
grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status | tr '\t' ' '
echo "network interfaces: $(ls /sys/class/net | tr '\n' ' ')"
httpd -p 127.0.0.1:8080 -h /app/www
echo "GET http://127.0.0.1:8080/ -> $(wget -qO- http://127.0.0.1:8080/)"
