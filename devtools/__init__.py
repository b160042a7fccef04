"""Development tools: test and benchmark harnesses that never ship in the voxline wheel.

`devtools.telephony` runs a real Asterisk 22 (from a Debian sid chroot) for the telephony tests
and measurements; `devtools.cluster` runs N replicas behind HAProxy with the checkout's
deploy/haproxy config (`scripts/cluster`, tests/cluster, bench/cluster.py).
"""
