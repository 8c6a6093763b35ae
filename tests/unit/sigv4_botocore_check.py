#!/usr/bin/python3
"""sigv4_botocore_check.py - cross-check the C SigV4 signer against botocore.

Signs the same requests with sigv4_cli (our signer) and with botocore's
S3SigV4Auth (the signer of the AWS SDK for Python) at a fixed timestamp, and
compares Authorization, x-amz-date, x-amz-content-sha256,
x-amz-security-token and the request target byte for byte. The requests are
one AWS documentation example (which checks this harness itself) plus
pseudo-random ones: keys with odd and non-ASCII characters, query
parameters, repeated and padded headers, session tokens, regions, methods.

It is not a test of botocore and does not talk to any server. The only
normalisation: botocore separates the Authorization fields with ", ", the
AWS examples and our signer with ","; both are accepted by S3.

Usage: sigv4_botocore_check.py PATH_TO_SIGV4_CLI
Environment: SIGV4_CHECK_SEED (default 20130524), SIGV4_CHECK_COUNT (default 30).
Exit status: 0 all match, 1 a mismatch, 77 botocore is not importable, 99 bad usage.
"""

import datetime
import hashlib
import os
import random
import subprocess
import sys
from unittest import mock
from urllib.parse import quote

try:
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.config import Config
    from botocore.credentials import Credentials
except ImportError as e:  # skip, not fail: the signer is still covered by test_sigv4
    print(f"botocore is not importable ({e}); skipping", file=sys.stderr)
    sys.exit(77)

KEY_CHARS = (
    [chr(c) for c in range(0x20, 0x7F)]
    + ["\t", "\x7f", "\u00e9", "\u00fc", "\u043a\u043b\u044e\u0447", "\u4e2d\u6587", "\u20ac", "\U0001f600"]
    + ["+", "=", "~", " ", "/", "%"] * 3
)
HEADER_VALUE_CHARS = [chr(c) for c in range(0x21, 0x7F)] + [" ", " ", " ", "\t"]
TOKEN_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
NAME_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789-_.!#$%&'*+^`|~"
QUERY_NAMES = ["list-type", "prefix", "delimiter", "continuation-token", "max-keys", "start-after",
               "uploadId", "partNumber", "versionId", "encoding-type", "x-id", "lifecycle", "acl"]
REGIONS = ["us-east-1", "eu-west-3", "ap-southeast-2", "auto", "us-gov-west-1", "cn-north-1"]
METHODS = ["GET", "PUT", "HEAD", "DELETE", "POST"]
HOSTS = [("https", "s3.amazonaws.com"), ("https", "bucket.s3.eu-west-3.amazonaws.com"),
         ("http", "minio:9000"), ("http", "127.0.0.1:9000"), ("https", "storage.googleapis.com"),
         ("http", "[::1]:9000")]


def rand_text(rng, chars, lo, hi):
    return "".join(rng.choice(chars) for _ in range(rng.randint(lo, hi)))


def random_request(rng, index):
    """One pseudo-random request description."""
    scheme, host = rng.choice(HOSTS)
    segments = [rand_text(rng, KEY_CHARS, 1, 12) for _ in range(rng.randint(1, 4))]
    path = "/" + rng.choice(["fallback", "b", "my.bucket"]) + "/" + "/".join(segments)
    query = []
    for _ in range(rng.choice([0, 0, 1, 2, 4])):
        if rng.random() < 0.7:
            name = rng.choice(QUERY_NAMES)
        else:
            name = rand_text(rng, KEY_CHARS, 1, 6)
        value = rng.choice(["", "", "2", "1000", rand_text(rng, KEY_CHARS, 0, 10)])
        query.append((name, value))
    if query and rng.random() < 0.3:
        query.append((query[0][0], rand_text(rng, KEY_CHARS, 0, 4)))  # a repeated name
    headers = []
    for _ in range(rng.randint(0, 4)):
        name = rng.choice(["Content-Type", "If-Match", "If-None-Match", "Content-MD5", "Range",
                           "x-amz-meta-uploader", "X-Amz-Meta-" + rand_text(rng, NAME_CHARS, 1, 8)])
        if rng.random() < 0.5:
            name = "".join(c.upper() if rng.random() < 0.5 else c.lower() for c in name)
        value = rand_text(rng, HEADER_VALUE_CHARS, 0, 20)
        if rng.random() < 0.3:
            value = "  " + value + " \t "
        headers.append((name, value))
    token = None
    if rng.random() < 0.4:
        token = rand_text(rng, TOKEN_CHARS, 20, 400)
    when = datetime.datetime(2000, 1, 1) + datetime.timedelta(seconds=rng.randint(0, 3155759999))
    return {
        "name": f"random-{index}",
        "scheme": scheme,
        "host": host,
        "method": rng.choice(METHODS),
        "path": path,
        "query": query,
        "headers": headers,
        "body": os.urandom(rng.randint(0, 64)) if rng.random() < 0.7 else b"",
        "unsigned": scheme == "https" and rng.random() < 0.3,
        "access_key": rng.choice(["AKIAIOSFODNN7EXAMPLE", "GOOG1E" + rand_text(rng, TOKEN_CHARS[:62], 20, 40),
                                  "minioadmin"]),
        "secret_key": rand_text(rng, [chr(c) for c in range(0x21, 0x7F)], 8, 60),
        "token": token,
        "region": rng.choice(REGIONS),
        "time": when,
    }


def aws_get_example():
    """The AWS GET Object example: if this fails, the harness is wrong, not the signer."""
    return {
        "name": "aws-get-object-range", "scheme": "https", "host": "examplebucket.s3.amazonaws.com",
        "method": "GET", "path": "/test.txt", "query": [], "headers": [("Range", "bytes=0-9")],
        "body": b"", "unsigned": False, "access_key": "AKIAIOSFODNN7EXAMPLE",
        "secret_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "token": None,
        "region": "us-east-1", "time": datetime.datetime(2013, 5, 24),
        "want_signature": "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
    }


def sign_botocore(spec):
    """Sign spec with botocore; returns the values our CLI prints."""
    url = f"{spec['scheme']}://{spec['host']}{quote(spec['path'], safe='/~')}"
    req = AWSRequest(method=spec["method"], url=url, params=list(spec["query"]) or None,
                     data=spec["body"])
    req.headers["Host"] = spec["host"]
    for name, value in spec["headers"]:
        req.headers[name] = value  # HTTPHeaders appends: repeats are kept, in order
    if spec["unsigned"]:
        req.context["client_config"] = Config(s3={"payload_signing_enabled": False})
    auth = S3SigV4Auth(Credentials(spec["access_key"], spec["secret_key"], spec["token"]),
                       "s3", spec["region"])
    with mock.patch("botocore.auth.datetime") as fake:
        fake.datetime.utcnow.return_value = spec["time"]
        auth.add_auth(req)
    fields = req.headers["Authorization"].split(", ")
    if len(fields) != 3:
        raise AssertionError(f"unexpected botocore Authorization: {req.headers['Authorization']!r}")
    query = auth.canonical_query_string(req)
    out = {
        "authorization": ",".join(fields),
        "x-amz-date": req.headers["X-Amz-Date"],
        "x-amz-content-sha256": req.headers["X-Amz-Content-SHA256"],
        "target": quote(spec["path"], safe="/~") + ("?" + query if query else ""),
    }
    if spec["token"]:
        out["x-amz-security-token"] = req.headers["X-Amz-Security-Token"]
    return out


def sign_cli(cli, spec):
    """Sign spec with sigv4_cli; returns its output as a dict."""
    def h(s):
        return (s.encode("utf-8") if isinstance(s, str) else s).hex()

    payload = "UNSIGNED-PAYLOAD" if spec["unsigned"] else hashlib.sha256(spec["body"]).hexdigest()
    epoch = int((spec["time"] - datetime.datetime(1970, 1, 1)).total_seconds())
    lines = [f"method {h(spec['method'])}", f"path {h(spec['path'])}", f"payload {h(payload)}",
             f"region {h(spec['region'])}", "service " + h("s3"),
             f"access-key {h(spec['access_key'])}", f"secret-key {h(spec['secret_key'])}",
             f"time {epoch}", f"header {h('Host')} {h(spec['host'])}"]
    if spec["token"]:
        lines.append(f"token {h(spec['token'])}")
    lines += [f"query {h(n)} {h(v)}" for n, v in spec["query"]]
    lines += [f"header {h(n)} {h(v)}" for n, v in spec["headers"]]
    proc = subprocess.run([cli], input="\n".join(lines) + "\n", capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        raise AssertionError(f"sigv4_cli exited {proc.returncode}: {proc.stdout}{proc.stderr}")
    out = {}
    for line in proc.stdout.splitlines():
        key, _, value = line.partition(" ")
        out[key] = value
    return out


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 99
    cli = sys.argv[1]
    seed = int(os.environ.get("SIGV4_CHECK_SEED", "20130524"))
    count = int(os.environ.get("SIGV4_CHECK_COUNT", "30"))
    rng = random.Random(seed)
    specs = [aws_get_example()] + [random_request(rng, i) for i in range(count)]
    failures = 0
    for spec in specs:
        try:
            want = sign_botocore(spec)
            got = sign_cli(cli, spec)
            if "want_signature" in spec and not want["authorization"].endswith(
                    "Signature=" + spec["want_signature"]):
                raise AssertionError(f"botocore harness broken: {want['authorization']}")
            if got != want:
                diff = {k: (got.get(k), want.get(k)) for k in set(got) | set(want)
                        if got.get(k) != want.get(k)}
                raise AssertionError(f"mismatch (ours, botocore): {diff!r}")
        except AssertionError as e:
            failures += 1
            print(f"FAIL {spec['name']} {spec['method']} {spec['path']!r}: {e}", file=sys.stderr)
    print(f"{len(specs)} requests (seed {seed}), {failures} mismatches")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
