"""Shared fixtures of the S3 tests: the servers (one Ceph RGW and one s3rver per
session, on loopback), Kong's environment for the daemon, the aws and s3cmd
clients, and the mount helpers of tests/mount."""
import hashlib
import importlib.util
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BUILD = os.environ.get("FALLBACKFS_BUILD", os.path.join(ROOT, "build"))
CONTRACT = os.path.join(BUILD, "tests", "store_contract")
DAEMON = os.path.join(BUILD, "fallbackfs")
sys.path.insert(0, os.path.join(ROOT, "tests", "servers"))
sys.path.insert(0, os.path.join(ROOT, "tests", "mount"))
import servers  # noqa: E402

_spec = importlib.util.spec_from_file_location(
    "fallbackfs_mount_helpers", os.path.join(ROOT, "tests", "mount", "conftest.py"))
mh = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(mh)
# the mount tests' file and status helpers, for the S3 mount tests
read, write, requests = mh.read, mh.write, mh.requests

AWS = "/usr/bin/aws"
S3CMD = "/usr/bin/s3cmd"
CA_VARS = ("AWS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")
# Lines the daemon may print against these servers.
S3_ALLOWED = [r"^fallbackfs: s3: .* does not (enforce conditional writes|refresh LastModified|"
              r"enforce conditions on multipart completion)"]


def same(a, b):
    """Compare big bodies by digest: pytest's diff of two multi-megabyte values takes
    minutes, long enough to look like a hang."""
    return hashlib.sha256(a).hexdigest() == hashlib.sha256(b).hexdigest()


def uploads_in_progress(server, prefix=""):
    """Multipart uploads started and neither completed nor aborted (under prefix)."""
    st, _, body = servers.s3_request(server, "GET", "", query={"uploads": "", "prefix": prefix})
    assert st == 200, body
    return body.count(b"<Upload>")


@pytest.fixture(scope="session")
def rgw(tmp_path_factory):
    d = tmp_path_factory.mktemp("rgw")
    try:
        yield servers.start_rgw(d)
    finally:
        servers.stop_rgw(d)


@pytest.fixture(scope="session")
def s3rver(tmp_path_factory):
    d = tmp_path_factory.mktemp("s3rver")
    try:
        yield servers.start_s3rver(d)
    finally:
        servers.stop_s3rver(d)


def kong_env(server, ca="cleared", **extra):
    """The environment Kong would have, for a subprocess: server's endpoint and keys in Kong's
    variables, no other AWS_* or CA settings from the caller (ca="set" points them at a file
    that does not exist, to show they are not read)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("AWS_") and k not in CA_VARS}
    env.update({
        "AWS_CONFIG_STORAGE_ENDPOINT": server["S3_ENDPOINT"],
        "AWS_ACCESS_KEY_ID": server["AWS_ACCESS_KEY_ID"],
        "AWS_SECRET_ACCESS_KEY": server["AWS_SECRET_ACCESS_KEY"],
        "AWS_REGION": server["AWS_REGION"],
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/credentials",
        "AWS_CONFIG_FILE": "/nonexistent/config",
    })
    if ca == "set":
        for k in CA_VARS:
            env[k] = "/nonexistent/ca-bundle.pem"
    env.update({k: str(v) for k, v in extra.items() if v is not None})
    for k in [k for k, v in extra.items() if v is None]:
        env.pop(k, None)
    return env


def cli_env(server):
    """Environment for /usr/bin/aws and s3cmd."""
    env = kong_env(server)
    env.pop("AWS_CONFIG_STORAGE_ENDPOINT")
    env["HOME"] = "/nonexistent-home"
    return env


def aws(server, *args, check=True):
    p = subprocess.run([AWS, "--endpoint-url", server["S3_ENDPOINT"]] + list(args),
                       env=cli_env(server), capture_output=True, text=True, timeout=120)
    if check:
        assert p.returncode == 0, p.stderr
    return p


def s3cmd(server, *args):
    host = server["S3_ENDPOINT"].split("://", 1)[1]
    p = subprocess.run([S3CMD, "--no-ssl", "--host=" + host, "--host-bucket=" + host,
                        "--access_key=" + server["AWS_ACCESS_KEY_ID"],
                        "--secret_key=" + server["AWS_SECRET_ACCESS_KEY"],
                        "--region=" + server["AWS_REGION"], "--config=/dev/null"] + list(args),
                       env=cli_env(server), capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    return p
