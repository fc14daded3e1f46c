#!/usr/bin/env python3
# drive.py PORT EVENT N CONNS TAG: N issue requests over CONNS keep-alive connections, each a new user.
import http.client, sys, threading
port, event, n, conns, tag = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
codes = {}
lock = threading.Lock()
def work(t):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    for i in range(t, n, conns):
        body = '{"event_id":"%s","user_id":"%s-%d"}' % (event, tag, i)
        c.request("POST", "/v1/coupon/issue", body, {"Content-Type": "application/json"})
        r = c.getresponse(); r.read()
        with lock: codes[r.status] = codes.get(r.status, 0) + 1
ts = [threading.Thread(target=work, args=(t,)) for t in range(conns)]
[t.start() for t in ts]; [t.join() for t in ts]
print(codes, file=sys.stderr)
