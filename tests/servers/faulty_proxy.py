#!/usr/bin/python3
"""Fault-injecting HTTP proxy for the fallbackfs tests (Python 3 standard library only).

Sits on 127.0.0.1 in front of one S3 server (also on loopback) and forwards every request
unchanged: request line, headers (Host and Authorization included, in their order and case)
and body bytes, so SigV4 signatures stay valid. The client must therefore sign for the proxy's
host:port, which is what it connects to anyway.

    /usr/bin/python3 faulty_proxy.py --upstream http://127.0.0.1:PORT [--port 0]
        [--port-file FILE] [--max-lifetime 3600] [--log FILE]

It prints "LISTENING <port>" on stdout once it accepts connections and exits by itself after
--max-lifetime seconds.

Control API (S3 bucket names cannot contain "_", so these never clash with real requests):

  POST   /__fault__   add a rule (JSON object) or rules (JSON list); answers the rule list
  GET    /__fault__   the rules with their remaining counts
  DELETE /__fault__   drop all rules
  GET    /__stats__   {"total": n, "by_method": {...}, "by_status": {...}, "faults": {...},
                       "requests": [[method, path, status_or_fault], ... last 1000]}
  DELETE /__stats__   reset the counters

A rule:
  {"action": "503" | "500" | "429" | "error" | "reset" | "delay" | "slow_body" | "truncate",
   "method": "PUT",              # or "*" (default)
   "path": "regex",              # re.search on the request target (path?query), default any
   "count": 1,                   # how many matching requests it applies to; -1 = forever
   "seconds": 2.0,               # delay / slow_body: delay or total duration
   "status": 503, "code": "SlowDown", "message": "...",   # "error": any status/S3 code
   "forward": false,             # 503/500/429/error/reset: send the request upstream first
                                 # (the store executes it, the client still sees the fault)
   "bytes": null}                # truncate: body bytes sent before closing (default half)

  503 -> 503 SlowDown, 500 -> 500 InternalError, 429 -> 429 TooManyRequests (S3 XML bodies);
  reset: close the client connection with a TCP RST and no answer;
  delay: forward, then hold the response headers for `seconds`;
  slow_body: forward, send the headers at once, then the body spread over `seconds`;
  truncate: forward, send the headers (original Content-Length) and only part of the body,
  then close the connection.
The first rule (in order of addition) matching method and path with a count left applies.
"""

import argparse
import http.client
import http.server
import ipaddress
import json
import os
import re
import socket
import struct
import sys
import threading
import time
import urllib.parse

S3_ERRORS = {
    "503": (503, "SlowDown", "Please reduce your request rate."),
    "500": (500, "InternalError", "We encountered an internal error. Please try again."),
    "429": (429, "TooManyRequests", "Too many requests, please slow down."),
}
ACTIONS = set(S3_ERRORS) | {"error", "reset", "delay", "slow_body", "truncate"}
HOP_BY_HOP_RESP = {"transfer-encoding"}  # re-framed by us when the upstream answered chunked


class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.rules = []
        self.next_id = 1
        self.reset_stats()

    def reset_stats(self):
        self.total = 0
        self.by_method = {}
        self.by_status = {}
        self.faults = {}
        self.requests = []

    def add_rule(self, rule):
        if not isinstance(rule, dict):
            raise ValueError("a rule is a JSON object")
        action = str(rule.get("action", ""))
        if action not in ACTIONS:
            raise ValueError("unknown action %r (one of %s)" % (action, sorted(ACTIONS)))
        r = {
            "id": self.next_id,
            "action": action,
            "method": str(rule.get("method", "*")).upper(),
            "path": rule.get("path"),
            "count": int(rule.get("count", 1)),
            "seconds": float(rule.get("seconds", 0)),
            "forward": bool(rule.get("forward", False)),
            "bytes": rule.get("bytes"),
            "status": rule.get("status"),
            "code": rule.get("code"),
            "message": rule.get("message"),
            "applied": 0,
        }
        if r["path"] is not None:
            re.compile(r["path"])
        if action == "error" and not r["status"]:
            raise ValueError("action 'error' needs a status")
        self.next_id += 1
        self.rules.append(r)

    def match(self, method, target):
        """Consume and return the first rule matching the request, or None."""
        with self.lock:
            for r in self.rules:
                if r["count"] == 0:
                    continue
                if r["method"] not in ("*", method):
                    continue
                if r["path"] is not None and not re.search(r["path"], target):
                    continue
                if r["count"] > 0:
                    r["count"] -= 1
                r["applied"] += 1
                self.faults[r["action"]] = self.faults.get(r["action"], 0) + 1
                return dict(r)
        return None

    def count(self, method):
        with self.lock:
            self.total += 1
            self.by_method[method] = self.by_method.get(method, 0) + 1

    def record(self, method, target, outcome):
        with self.lock:
            key = str(outcome)
            self.by_status[key] = self.by_status.get(key, 0) + 1
            self.requests.append([method, target, outcome])
            del self.requests[:-1000]
        log("%s %s -> %s", method, target, outcome)

    def stats(self):
        with self.lock:
            return {"total": self.total, "by_method": dict(self.by_method),
                    "by_status": dict(self.by_status), "faults": dict(self.faults),
                    "requests": list(self.requests)}


STATE = State()
UPSTREAM = ("127.0.0.1", 0)
UPSTREAM_TIMEOUT = 60.0
LOG = None


def log(fmt, *args):
    if LOG:
        LOG.write("%.3f %s\n" % (time.time(), fmt % args))
        LOG.flush()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 300  # an idle or stuck client connection is dropped after this

    def log_message(self, fmt, *args):
        log("%s " + fmt, self.client_address[0], *args)

    # every method goes through one place
    def handle_one_request(self):
        try:
            self.raw_requestline = self.rfile.readline(65537)
            if len(self.raw_requestline) > 65536:
                self.send_error(414)
                return
            if not self.raw_requestline:
                self.close_connection = True
                return
            if not self.parse_request():
                return
            self.dispatch()
            self.wfile.flush()
        except (socket.timeout, ConnectionError, BrokenPipeError) as e:
            log("connection error: %r", e)
            self.close_connection = True

    # ---- helpers -------------------------------------------------------------------------

    def read_body(self):
        """The request body exactly as received (chunked framing kept as is)."""
        te = self.headers.get("Transfer-Encoding", "")
        if "chunked" in te.lower():
            out = bytearray()
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    raise ConnectionError("client closed inside a chunked body")
                out += line
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while True:  # trailers up to the empty line
                        t = self.rfile.readline(65537)
                        out += t
                        if t in (b"\r\n", b"\n", b""):
                            return bytes(out)
                data = self.rfile.read(size + 2)
                if len(data) < size + 2:
                    raise ConnectionError("client closed inside a chunk")
                out += data
        n = int(self.headers.get("Content-Length", "0") or 0)
        data = self.rfile.read(n) if n else b""
        if len(data) < n:
            raise ConnectionError("client closed inside the body")
        return data

    def send_raw(self, status, reason, headers, body=b""):
        lines = ["HTTP/1.1 %d %s" % (status, reason)]
        lines += ["%s: %s" % (k, v) for k, v in headers]
        self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        if body:
            self.wfile.write(body)
        self.wfile.flush()

    def send_json(self, status, obj):
        body = (json.dumps(obj, indent=1) + "\n").encode()
        self.send_raw(status, http.client.responses.get(status, ""),
                      [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
                      body)

    def send_s3_error(self, status, code, message):
        rid = "faulty-proxy-%d" % STATE.total
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>%s</Code>'
                "<Message>%s</Message><Resource>%s</Resource><RequestId>%s</RequestId>"
                "</Error>" % (code, message, _xml_escape(urllib.parse.urlsplit(self.path).path),
                              rid)).encode()
        headers = [("Content-Type", "application/xml"), ("Content-Length", str(len(body))),
                   ("x-amz-request-id", rid), ("Date", self.date_time_string())]
        if status in (503, 429):
            headers.append(("Retry-After", "1"))
        self.send_raw(status, http.client.responses.get(status, "Error"), headers,
                      b"" if self.command == "HEAD" else body)

    def reset(self):
        """Close the client connection with a TCP RST, without any answer."""
        try:
            self.wfile.flush()
        except OSError:
            pass
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close_connection = True
        try:
            self.connection.close()
        except OSError:
            pass

    def forward(self, body):
        """Send the request upstream byte for byte; return (connection, response)."""
        conn = http.client.HTTPConnection(UPSTREAM[0], UPSTREAM[1], timeout=UPSTREAM_TIMEOUT)
        conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
        for k, v in self.headers.items():
            conn.putheader(k, v)
        conn.endheaders(body if body else None)
        resp = conn.getresponse()
        return conn, resp

    # ---- dispatch ------------------------------------------------------------------------

    def dispatch(self):
        target = self.path
        if target.startswith("/__fault__") or target.startswith("/__stats__"):
            self.control()
            return
        method = self.command
        STATE.count(method)
        body = self.read_body()
        rule = STATE.match(method, target)
        action = rule["action"] if rule else None

        if action in S3_ERRORS or action == "error" or action == "reset":
            if rule["forward"]:
                try:
                    conn, resp = self.forward(body)
                    resp.read()
                    conn.close()
                except (OSError, http.client.HTTPException) as e:
                    log("forward before fault failed: %r", e)
            if action == "reset":
                STATE.record(method, target, "reset")
                self.reset()
                return
            if action == "error":
                status, code = int(rule["status"]), rule["code"] or "InternalError"
                message = rule["message"] or "Injected error."
            else:
                status, code, message = S3_ERRORS[action]
                code = rule["code"] or code
                message = rule["message"] or message
            STATE.record(method, target, status)
            self.send_s3_error(status, code, message)
            return

        try:
            conn, resp = self.forward(body)
        except (OSError, http.client.HTTPException) as e:
            log("upstream failed: %r", e)
            STATE.record(method, target, 502)
            self.send_s3_error(502, "BadGateway", "faulty_proxy: upstream failed: %s" % e)
            return
        try:
            self.relay(resp, rule, method, target)
        finally:
            conn.close()

    def relay(self, resp, rule, method, target):
        action = rule["action"] if rule else None
        chunked = resp.chunked
        headers = [(k, v) for k, v in resp.getheaders()
                   if not (chunked and k.lower() in HOP_BY_HOP_RESP)]
        no_body = method == "HEAD" or resp.status in (204, 304) or 100 <= resp.status < 200
        if chunked and not no_body:
            headers.append(("Transfer-Encoding", "chunked"))
        if (resp.getheader("Connection", "") or "").lower() == "close":
            self.close_connection = True
        if action == "delay":
            time.sleep(rule["seconds"])
        self.send_raw(resp.status, resp.reason, headers)
        STATE.record(method, target, resp.status if not action else
                     "%d+%s" % (resp.status, action))
        if no_body:
            return
        if action == "truncate":
            data = resp.read()
            n = rule["bytes"] if rule["bytes"] is not None else len(data) // 2
            if chunked:  # send n bytes as one chunk, then stop without the final chunk
                if n:
                    self.wfile.write(b"%x\r\n" % n + data[:n] + b"\r\n")
            else:
                self.wfile.write(data[:n])
            self.wfile.flush()
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if action == "slow_body":
            data = resp.read()
            pieces = max(1, min(len(data), 20))
            step = (len(data) + pieces - 1) // pieces if data else 0
            pause = rule["seconds"] / pieces
            for i in range(pieces):
                part = data[i * step:(i + 1) * step]
                time.sleep(pause)
                if part:
                    self.write_piece(part, chunked)
            if chunked:
                self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
            return
        while True:
            part = resp.read1(65536) if hasattr(resp, "read1") else resp.read(65536)
            if not part:
                break
            self.write_piece(part, chunked)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def write_piece(self, part, chunked):
        if chunked:
            self.wfile.write(b"%x\r\n" % len(part) + part + b"\r\n")
        else:
            self.wfile.write(part)
        self.wfile.flush()

    def control(self):
        body = self.read_body()
        path = urllib.parse.urlsplit(self.path).path.rstrip("/")
        if path == "/__fault__":
            if self.command == "GET":
                with STATE.lock:
                    rules = [dict(r) for r in STATE.rules]
                self.send_json(200, rules)
                return
            if self.command == "DELETE":
                with STATE.lock:
                    STATE.rules = []
                self.send_json(200, [])
                return
            if self.command in ("POST", "PUT"):
                try:
                    obj = json.loads(body or b"null")
                    with STATE.lock:
                        for rule in obj if isinstance(obj, list) else [obj]:
                            STATE.add_rule(rule)
                            log("rule added: %s", STATE.rules[-1])
                        rules = list(STATE.rules)
                except (ValueError, TypeError, re.error) as e:
                    self.send_json(400, {"error": str(e)})
                    return
                self.send_json(200, rules)
                return
        elif path == "/__stats__":
            if self.command == "GET":
                self.send_json(200, STATE.stats())
                return
            if self.command in ("DELETE", "POST"):
                with STATE.lock:
                    STATE.reset_stats()
                self.send_json(200, STATE.stats())
                return
        self.send_json(404, {"error": "unknown control request %s %s" % (self.command, path)})


def _xml_escape(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def loopback_only(host):
    try:
        infos = socket.getaddrinfo(host, None)
    except socket.gaierror as e:
        raise SystemExit("faulty_proxy: cannot resolve %s: %s" % (host, e))
    for info in infos:
        if not ipaddress.ip_address(info[4][0]).is_loopback:
            raise SystemExit("faulty_proxy: upstream %s is not a loopback address" % host)


def main():
    global UPSTREAM, UPSTREAM_TIMEOUT, LOG
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--upstream", required=True, help="http://127.0.0.1:PORT of the S3 server")
    ap.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free one)")
    ap.add_argument("--port-file", help="write the port here once listening")
    ap.add_argument("--max-lifetime", type=float, default=3600.0,
                    help="exit after this many seconds (default 3600)")
    ap.add_argument("--upstream-timeout", type=float, default=60.0)
    ap.add_argument("--log", help="append a request log here")
    args = ap.parse_args()

    u = urllib.parse.urlsplit(args.upstream)
    if u.scheme != "http" or not u.hostname or not u.port:
        raise SystemExit("faulty_proxy: --upstream must be http://HOST:PORT")
    loopback_only(u.hostname)
    UPSTREAM = (u.hostname, u.port)
    UPSTREAM_TIMEOUT = args.upstream_timeout
    if args.log:
        LOG = open(args.log, "a", buffering=1)

    server = Server(("127.0.0.1", args.port), Handler)
    port = server.server_address[1]

    def die():
        log("max lifetime %.0fs reached, exiting", args.max_lifetime)
        os._exit(0)

    timer = threading.Timer(args.max_lifetime, die)
    timer.daemon = True
    timer.start()
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.replace(tmp, args.port_file)
    print("LISTENING %d" % port, flush=True)
    log("listening on 127.0.0.1:%d, upstream %s:%d", port, *UPSTREAM)
    try:
        server.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
