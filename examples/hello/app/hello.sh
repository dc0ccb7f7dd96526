#!/bin/sh
# examples/hello: what a workload started by agentd sees of itself (it goes
# to the deployment's log), then a web server on port 8080.
echo "hello from $(hostname): I am pid $$ in my own pid namespace"
echo "processes I can see: $(ls /proc | grep -c '^[0-9]')"
grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status | tr '\t' ' '
echo "network interfaces: $(ls /sys/class/net | tr '\n' ' ')"
exec httpd -f -p 8080 -h /app/www
