"""Start and stop the S3 test servers for the fallbackfs tests (standard library only).

    from servers import start_rgw, stop_rgw, start_s3rver, stop_s3rver, FaultyProxy, s3_request

    env = start_rgw("/tmp/x/rgw")          # dict: S3_ENDPOINT, AWS_ACCESS_KEY_ID, ... S3_BUCKET
    with FaultyProxy(env["S3_ENDPOINT"]) as proxy:
        penv = proxy.env(env)              # same credentials, S3_ENDPOINT -> the proxy
        proxy.add_fault("503", method="GET", path="/config.json$", count=2)
        ...
        assert proxy.stats()["by_method"].get("PUT", 0) == 1
    stop_rgw("/tmp/x/rgw")

A pytest fixture is then a few lines, e.g.

    @pytest.fixture(scope="session")
    def rgw(tmp_path_factory):
        d = tmp_path_factory.mktemp("rgw")
        yield servers.start_rgw(d)
        servers.stop_rgw(d)

Everything binds to 127.0.0.1 only. All waits are bounded.
"""

import datetime
import hashlib
import hmac
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON = "/usr/bin/python3"

# rgw.sh may have to apt-get install ceph first (minutes on a fresh machine); s3rver.sh npm.
RGW_START_TIMEOUT = 900
S3RVER_START_TIMEOUT = 600
STOP_TIMEOUT = 60


class ServerError(RuntimeError):
    pass


def _run(script, action, directory, timeout):
    cmd = ["bash", os.path.join(HERE, script), action, str(directory)]
    try:
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=timeout, text=True)
    except subprocess.TimeoutExpired as e:
        raise ServerError("%s %s timed out after %ss:\n%s" % (script, action, timeout,
                                                            e.stderr or "")) from None
    if p.returncode != 0:
        raise ServerError("%s %s %s failed (exit %d):\n%s%s" % (
            script, action, directory, p.returncode, p.stdout, p.stderr))
    return p


def read_env(directory):
    """The KEY=VALUE pairs of DIR/env as a dict."""
    env = {}
    with open(os.path.join(str(directory), "env")) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                k, v = line.split("=", 1)
                env[k] = v
    return env


def start_rgw(directory):
    """Start a single-node Ceph RGW under `directory`; return its env dict (~15-20 s)."""
    _run("rgw.sh", "start", directory, RGW_START_TIMEOUT)
    return read_env(directory)


def stop_rgw(directory):
    _run("rgw.sh", "stop", directory, STOP_TIMEOUT)


def start_s3rver(directory):
    """Start s3rver with its data under `directory`; return its env dict (< 1 s once cached)."""
    _run("s3rver.sh", "start", directory, S3RVER_START_TIMEOUT)
    return read_env(directory)


def stop_s3rver(directory):
    _run("s3rver.sh", "stop", directory, STOP_TIMEOUT)


class FaultyProxy:
    """faulty_proxy.py in front of `upstream` (http://127.0.0.1:PORT)."""

    def __init__(self, upstream, max_lifetime=3600, log_path=None, start_timeout=10):
        self.upstream = upstream.rstrip("/")
        self.max_lifetime = max_lifetime
        self.log_path = log_path
        self.start_timeout = start_timeout
        self.proc = None
        self.port = None

    @property
    def endpoint(self):
        return "http://127.0.0.1:%d" % self.port

    def start(self):
        cmd = [PYTHON, os.path.join(HERE, "faulty_proxy.py"), "--upstream", self.upstream,
               "--max-lifetime", str(self.max_lifetime)]
        if self.log_path:
            cmd += ["--log", str(self.log_path)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, start_new_session=True)
        # The proxy prints "LISTENING <port>" once it accepts connections.
        import selectors
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + self.start_timeout
        line = ""
        while time.monotonic() < deadline:
            if sel.select(timeout=max(0.0, deadline - time.monotonic())):
                line = self.proc.stdout.readline()
                break
        sel.close()
        if not line.startswith("LISTENING "):
            self.stop()
            err = self.proc.stderr.read() if self.proc.stderr else ""
            raise ServerError("faulty_proxy did not start: %r %s" % (line, err))
        self.port = int(line.split()[1])
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc:
            for f in (self.proc.stdout, self.proc.stderr):
                if f:
                    f.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def env(self, base_env):
        """`base_env` with S3_ENDPOINT pointing at the proxy."""
        e = dict(base_env)
        e["S3_ENDPOINT"] = self.endpoint
        return e

    def _control(self, method, path, obj=None):
        data = json.dumps(obj).encode() if obj is not None else None
        req = urllib.request.Request(self.endpoint + path, data=data, method=method)
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def add_fault(self, action, **rule):
        """action: 503|500|429|error|reset|delay|slow_body|truncate; rule: method, path,
        count, seconds, status, code, message, forward, bytes (see faulty_proxy.py)."""
        rule["action"] = str(action)
        return self._control("POST", "/__fault__", rule)

    def faults(self):
        return self._control("GET", "/__fault__")

    def clear_faults(self):
        return self._control("DELETE", "/__fault__")

    def stats(self):
        return self._control("GET", "/__stats__")

    def reset_stats(self):
        return self._control("DELETE", "/__stats__")


# ---- a minimal SigV4 S3 client, path-style, for seeding and checking the store in tests ----

def _sign(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def s3_request(env, method, key="", body=b"", headers=None, query=None, timeout=30):
    """One signed request to env's bucket. key "" = the bucket itself. Returns
    (status, headers dict with lower-case names, body bytes); never raises on HTTP errors."""
    endpoint = urllib.parse.urlsplit(env["S3_ENDPOINT"])
    region = env.get("AWS_REGION", "us-east-1")
    path = "/" + env["S3_BUCKET"] + ("/" + key if key else "")
    cpath = urllib.parse.quote(path, safe="/-_.~")
    q = sorted((query or {}).items())
    cquery = "&".join("%s=%s" % (urllib.parse.quote(str(k), safe="-_.~"),
                                 urllib.parse.quote(str(v), safe="-_.~")) for k, v in q)
    now = datetime.datetime.now(datetime.timezone.utc)
    amzdate, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    payload_hash = hashlib.sha256(body).hexdigest()
    hdrs = {k.lower(): str(v).strip() for k, v in (headers or {}).items()}
    if method in ("PUT", "POST") and "content-type" not in hdrs:
        hdrs["content-type"] = "application/octet-stream"  # else urllib adds a form type
    hdrs["host"] = endpoint.netloc
    hdrs["x-amz-date"] = amzdate
    hdrs["x-amz-content-sha256"] = payload_hash
    if env.get("AWS_SESSION_TOKEN"):
        hdrs["x-amz-security-token"] = env["AWS_SESSION_TOKEN"]
    signed = sorted(hdrs)
    creq = "\n".join([method, cpath, cquery] + ["%s:%s" % (h, hdrs[h]) for h in signed] +
                     ["", ";".join(signed), payload_hash])
    scope = "%s/%s/s3/aws4_request" % (day, region)
    sts = "\n".join(["AWS4-HMAC-SHA256", amzdate, scope,
                     hashlib.sha256(creq.encode()).hexdigest()])
    k = _sign(("AWS4" + env["AWS_SECRET_ACCESS_KEY"]).encode(), day)
    k = _sign(_sign(_sign(k, region), "s3"), "aws4_request")
    sig = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
    hdrs["authorization"] = ("AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s"
                             % (env["AWS_ACCESS_KEY_ID"], scope, ";".join(signed), sig))
    url = "%s://%s%s%s" % (endpoint.scheme, endpoint.netloc, cpath, "?" + cquery if cquery else "")
    del hdrs["host"]
    req = urllib.request.Request(url, data=body if body or method in ("PUT", "POST") else None,
                                 headers=hdrs, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


if __name__ == "__main__":
    # python3 servers.py rgw|s3rver start|stop DIR  (a thin CLI for manual use)
    if len(sys.argv) != 4 or sys.argv[1] not in ("rgw", "s3rver"):
        sys.exit("usage: servers.py rgw|s3rver start|stop DIR")
    kind, action, d = sys.argv[1:]
    fn = {"start": {"rgw": start_rgw, "s3rver": start_s3rver},
          "stop": {"rgw": stop_rgw, "s3rver": stop_s3rver}}[action][kind]
    r = fn(d)
    if r:
        print(json.dumps(r, indent=1))
