#!/usr/bin/python3
"""fake_aws_meta.py - fake AWS credential endpoints for tests/unit/test_aws_creds.c.

What it is: one stdlib-only HTTP server on 127.0.0.1 that plays
  - EC2 IMDSv2: PUT /latest/api/token (needs the ttl header), then
    GET /latest/meta-data/iam/security-credentials/[ROLE] (needs the token);
  - ECS/EKS container credentials: GET /ecs/creds (needs the Authorization
    header to equal --ecs-auth);
  - STS AssumeRoleWithWebIdentity: POST / (form body; needs the token file's
    content and the role ARN given on the command line);
and counts what it served at GET /_stats (JSON). Every set of credentials it
issues expires --expiry seconds later and carries a fresh key id
(ASIA<SOURCE><n>), so a test can see which source answered and whether a
refresh happened.

What it is not: a faithful AWS; only what the client under test needs.
It prints its port on the first line of stdout, and exits by itself after
--lifetime seconds so a crashed test never leaves it behind.
"""
import argparse
import datetime
import json
import os
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROLE = "fake-role"
lock = threading.Lock()
stats = {"imds_token": 0, "imds_role": 0, "imds_creds": 0, "ecs": 0, "sts": 0,
         "rejected": 0}
imds_tokens = set()


def count(name):
    """Add one to a counter in stats."""
    with lock:
        stats[name] += 1
        return stats[name]


def expiration(args):
    """ISO 8601 UTC time --expiry seconds from now, as AWS writes it."""
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=args.expiry)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def creds(source, n, args):
    """One set of fake credentials from source (IMDS, ECS, STS)."""
    return {
        "AccessKeyId": "ASIA%s%04d" % (source, n),
        "SecretAccessKey": "secret-%s-%d" % (source.lower(), n),
        "Token": "token-%s-%d" % (source.lower(), n),
        "Expiration": expiration(args),
    }


class Handler(BaseHTTPRequestHandler):
    """Routes for IMDS, ECS and STS."""
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *a):
        """Stay quiet: the C test owns stderr."""

    def send(self, status, body, ctype="text/plain"):
        """Send one complete answer."""
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def reject(self, status, why):
        """Refuse a request, counting it."""
        count("rejected")
        self.send(status, why)

    def do_PUT(self):
        """IMDSv2 session token."""
        if self.path != "/latest/api/token":
            return self.reject(404, "no such path")
        if not self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
            return self.reject(400, "missing ttl header")
        n = count("imds_token")
        tok = "imds-session-%d" % n
        with lock:
            imds_tokens.add(tok)
        self.send(200, tok)

    def do_GET(self):
        """IMDS role and credentials, ECS credentials, stats."""
        args = self.server.args
        base = "/latest/meta-data/iam/security-credentials/"
        if self.path == "/_stats":
            with lock:
                return self.send(200, json.dumps(stats), "application/json")
        if self.path.startswith(base):
            with lock:
                ok = self.headers.get("X-aws-ec2-metadata-token") in imds_tokens
            if not ok:
                return self.reject(401, "IMDSv2 token required")
            if self.path == base:
                count("imds_role")
                return self.send(200, ROLE + "\n")
            if self.path == base + ROLE:
                c = creds("IMDS", count("imds_creds"), args)
                c.update({"Code": "Success", "Type": "AWS-HMAC",
                          "LastUpdated": expiration(args)})
                return self.send(200, json.dumps(c), "application/json")
            return self.reject(404, "no such role")
        if self.path.startswith("/ecs/"):
            if self.headers.get("Authorization") != args.ecs_auth:
                return self.reject(403, "bad authorization token")
            c = creds("ECS", count("ecs"), args)
            c["RoleArn"] = args.role_arn
            return self.send(200, json.dumps(c), "application/json")
        self.reject(404, "no such path")

    def do_POST(self):
        """STS AssumeRoleWithWebIdentity (form-encoded body)."""
        args = self.server.args
        n = int(self.headers.get("Content-Length", "0"))
        form = urllib.parse.parse_qs(self.rfile.read(n).decode())
        get = lambda k: form.get(k, [""])[0]
        if get("Action") != "AssumeRoleWithWebIdentity" or get("Version") != "2011-06-15":
            return self.reject(400, sts_error("InvalidAction", "bad action"))
        if get("RoleArn") != args.role_arn:
            return self.reject(403, sts_error("AccessDenied", "wrong role"))
        with open(args.sts_token_file) as f:
            want = f.read().strip()
        if get("WebIdentityToken") != want or not get("RoleSessionName"):
            return self.reject(403, sts_error("InvalidIdentityToken", "bad token"))
        c = creds("STS", count("sts"), args)
        body = (
            '<AssumeRoleWithWebIdentityResponse '
            'xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
            "<AssumeRoleWithWebIdentityResult><Credentials>"
            "<AccessKeyId>%s</AccessKeyId><SecretAccessKey>%s</SecretAccessKey>"
            "<SessionToken>%s</SessionToken><Expiration>%s</Expiration>"
            "</Credentials></AssumeRoleWithWebIdentityResult>"
            "</AssumeRoleWithWebIdentityResponse>"
            % (c["AccessKeyId"], c["SecretAccessKey"], c["Token"], c["Expiration"]))
        self.send(200, body, "text/xml")


def sts_error(code, msg):
    """An STS error document."""
    return ("<ErrorResponse><Error><Type>Sender</Type><Code>%s</Code>"
            "<Message>%s</Message></Error></ErrorResponse>" % (code, msg))


def main():
    """Parse options, serve until the lifetime ends."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--lifetime", type=float, default=60)
    ap.add_argument("--expiry", type=int, default=900)
    ap.add_argument("--ecs-auth", default="ecs-secret-auth")
    ap.add_argument("--role-arn", default="arn:aws:iam::123456789012:role/fake")
    ap.add_argument("--sts-token-file", default="/dev/null")
    args = ap.parse_args()

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    srv.args = args
    print(srv.server_address[1], flush=True)
    # Exit on our own even if the test that started us died.
    threading.Timer(args.lifetime, lambda: os._exit(0)).start()
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    sys.exit(0)


if __name__ == "__main__":
    main()
