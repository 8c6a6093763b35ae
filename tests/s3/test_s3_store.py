"""The s3:// store against real servers on loopback: Ceph RGW (real S3 semantics) and s3rver
(no signatures, no conditional writes), plus the fault-injecting proxy.

    /usr/bin/python3 -m pytest tests/s3/test_s3_store.py

Kong's own environment is what configures the store (AWS_CONFIG_STORAGE_ENDPOINT,
AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION); every subprocess gets an environment
built here, with the CA-bundle variables either cleared or set, so nothing depends on the
caller's shell.
"""
import collections
import errno
import json
import os
import subprocess
import sys
import threading
import time
import uuid

import pytest

from conftest import (CONTRACT, DAEMON, S3_ALLOWED, aws, kong_env, mh, s3cmd, servers,
                      same, uploads_in_progress)


def run_contract(server, prefix, **env):
    p = subprocess.run([CONTRACT, "s3://%s/%s" % (server["S3_BUCKET"], prefix)],
                       env=kong_env(server, **env), capture_output=True, text=True,
                       timeout=600)
    sys.stdout.write(p.stdout)
    sys.stderr.write(p.stderr)
    return p


@pytest.fixture
def s3mount(tmp_path):
    """Factory: s3mount(server, prefix, env=None, opts=()) -> a Mount of s3://bucket/prefix."""
    mounts = []

    def make(server, prefix, env=None, opts=(), name=None):
        name = name or "m%d" % len(mounts)
        m = mh.Mount("s3://%s/%s" % (server["S3_BUCKET"], prefix), tmp_path / name,
                     tmp_path / (name + "-cache"), opts, env or kong_env(server),
                     allowed=S3_ALLOWED)
        mounts.append(m)
        return m

    yield make
    mh.unmount_all(mounts)


def prefix():
    return "t-" + uuid.uuid4().hex[:10]


# ---- the contract suite ----------------------------------------------------------------------

@pytest.mark.parametrize("ca", ["cleared", "set"])
def test_contract_rgw(rgw, ca):
    p = run_contract(rgw, "some-prefix", ca=ca)
    assert p.returncode == 0, p.stderr
    assert ", 0 failed" in p.stdout
    assert "does not enforce conditional writes" not in p.stdout + p.stderr  # RGW enforces them
    # ... but not on CompleteMultipartUpload (Ceph 16): the probe finds that out, and
    # conditional puts then go as one PUT (the suite's create-only upload checks it)
    assert "does not enforce conditions on multipart completion" in p.stderr


def test_contract_rgw_multipart(rgw):
    """The same suite with 5 MiB parts, so its 8 MiB object goes multipart."""
    p = run_contract(rgw, "mp-prefix", FALLBACKFS_S3_PART_SIZE=5 << 20)
    assert p.returncode == 0, p.stderr
    assert uploads_in_progress(rgw) == 0


def test_contract_s3rver(s3rver):
    p = run_contract(s3rver, "some-prefix")
    assert p.returncode == 0, p.stderr
    assert "note: store does not enforce conditional writes (reported, -ENOTSUP)" in p.stdout
    assert "does not enforce conditional writes" in p.stderr
    # touch: s3rver's self-copy keeps LastModified, so the probe refuses the capability
    assert "does not refresh LastModified" in p.stderr


def test_s3rver_copy_keeps_last_modified(s3rver):
    """What the touch probe detects, shown directly: s3rver's CopyObject REPLACE."""
    key = prefix() + "/x"
    assert servers.s3_request(s3rver, "PUT", key, b"x")[0] == 200
    time.sleep(1.1)
    hdr = {"x-amz-copy-source": "/%s/%s" % (s3rver["S3_BUCKET"], key),
           "x-amz-metadata-directive": "REPLACE"}
    st, _, body = servers.s3_request(s3rver, "PUT", key, headers=hdr)
    st2, h2, _ = servers.s3_request(s3rver, "HEAD", key)
    assert st == 200 and st2 == 200
    lm = time.mktime(time.strptime(h2["last-modified"], "%a, %d %b %Y %H:%M:%S GMT"))
    assert time.mktime(time.gmtime()) - lm >= 1  # not refreshed by the copy


# ---- errors a user can fix, on the terminal ----------------------------------------------------

def daemon_fails(server, tmp_path, env, url=None):
    mnt = tmp_path / "mnt"
    mnt.mkdir(exist_ok=True)
    t0 = time.monotonic()
    p = subprocess.run([DAEMON, url or "s3://%s/pfx" % server["S3_BUCKET"], str(mnt),
                        "-o", "cache_dir=%s" % (tmp_path / "cache")],
                       env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode != 0
    assert not mh.is_mounted(str(mnt))
    return p.stderr, time.monotonic() - t0


def test_wrong_secret(rgw, tmp_path):
    err, _ = daemon_fails(rgw, tmp_path,
                          kong_env(rgw, AWS_SECRET_ACCESS_KEY="not-the-secret-key-0000"))
    assert "SignatureDoesNotMatch" in err and "secret access key" in err, err
    assert "not-the-secret" not in err


def test_unknown_access_key(rgw, tmp_path):
    err, _ = daemon_fails(rgw, tmp_path, kong_env(rgw, AWS_ACCESS_KEY_ID="AKIDUNKNOWN000000000"))
    assert "InvalidAccessKeyId" in err, err


def test_no_region(rgw, tmp_path):
    err, _ = daemon_fails(rgw, tmp_path, kong_env(rgw, AWS_REGION=None))
    assert "AWS_REGION" in err and "AWS_DEFAULT_REGION" in err, err


def test_unknown_bucket(rgw, tmp_path):
    err, _ = daemon_fails(rgw, tmp_path, kong_env(rgw), url="s3://no-such-bucket-xyz/p")
    assert "bucket 'no-such-bucket-xyz' does not exist" in err, err


def test_unreachable_endpoint(rgw, tmp_path):
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    err, took = daemon_fails(rgw, tmp_path, kong_env(
        rgw, AWS_CONFIG_STORAGE_ENDPOINT="http://127.0.0.1:%d/" % port))
    assert "cannot reach the S3 endpoint http://127.0.0.1:%d" % port in err, err
    assert took < 15


# ---- interoperability with awscli and s3cmd, through the mount --------------------------------

def test_interop_mount_aws_s3cmd(rgw, s3mount, tmp_path):
    pfx = prefix()
    m = s3mount(rgw, pfx, opts=["freshness=0"])
    os.makedirs(m.path("3.6.0.0"))
    small = os.urandom(2048)
    big = os.urandom(20 << 20)  # multipart (16 MiB parts)
    for name, data in (("config.json", small), ("big.bin", big)):
        with open(m.path("3.6.0.0", name), "wb") as f:
            f.write(data)
    for name, data in (("config.json", small), ("big.bin", big)):
        key = "s3://%s/%s/3.6.0.0/%s" % (rgw["S3_BUCKET"], pfx, name)
        out = tmp_path / ("aws-" + name)
        aws(rgw, "s3", "cp", key, str(out))
        assert same(out.read_bytes(), data)
        out2 = tmp_path / ("s3cmd-" + name)
        s3cmd(rgw, "get", "--force", key, str(out2))
        assert same(out2.read_bytes(), data)
    # .json uploads carry Kong's Content-Type
    p = aws(rgw, "s3api", "head-object", "--bucket", rgw["S3_BUCKET"],
            "--key", "%s/3.6.0.0/config.json" % pfx)
    assert '"ContentType": "application/json"' in p.stdout

    # the other way: written by the tools, read through the mount
    a_data, s_data = os.urandom(3 << 20), os.urandom(100000)
    (tmp_path / "a").write_bytes(a_data)
    (tmp_path / "s").write_bytes(s_data)
    aws(rgw, "s3", "cp", str(tmp_path / "a"),
        "s3://%s/%s/3.6.0.0/from-aws.json" % (rgw["S3_BUCKET"], pfx))
    s3cmd(rgw, "put", str(tmp_path / "s"),
          "s3://%s/%s/3.6.0.0/from-s3cmd.json" % (rgw["S3_BUCKET"], pfx))
    # aws cp goes multipart above 8 MiB: one such object too
    mp = os.urandom(9 << 20)
    (tmp_path / "mp").write_bytes(mp)
    aws(rgw, "s3", "cp", str(tmp_path / "mp"),
        "s3://%s/%s/3.6.0.0/from-aws-mp.bin" % (rgw["S3_BUCKET"], pfx))
    time.sleep(1.1)  # the mount's directory listings may be cached for a second
    with open(m.path("3.6.0.0", "from-aws.json"), "rb") as f:
        assert f.read() == a_data
    with open(m.path("3.6.0.0", "from-s3cmd.json"), "rb") as f:
        assert f.read() == s_data
    with open(m.path("3.6.0.0", "from-aws-mp.bin"), "rb") as f:
        assert f.read() == mp
    assert uploads_in_progress(rgw) == 0


def test_listing_1500_election_entries(rgw, s3mount):
    pfx = prefix()
    names = ["%d.%03d-%s" % (1704921469 + i, i % 1000, uuid.uuid4()) for i in range(1500)]

    def seed(chunk):
        for n in chunk:
            st = servers.s3_request(rgw, "PUT", "%s/3.6.0.0/election/%s" % (pfx, n), b"")[0]
            assert st == 200
    threads = [threading.Thread(target=seed, args=(names[i::8],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    m = s3mount(rgw, pfx)
    got = os.listdir(m.path("3.6.0.0", "election"))
    assert sorted(got) == sorted(names)


# ---- faults: retried transparently, or failing fast and clearly -------------------------------

@pytest.fixture
def proxy(rgw):
    with servers.FaultyProxy(rgw["S3_ENDPOINT"]) as p:
        yield p


def test_faults_slowdown_reset_timeout(rgw, proxy, s3mount):
    pfx = prefix()
    data = b'{"_format_version": "3.0"}\n' * 50
    assert servers.s3_request(rgw, "PUT", pfx + "/3.6.0.0/config.json", data)[0] == 200
    assert servers.s3_request(rgw, "PUT", pfx + "/3.6.0.0/slow.json", data)[0] == 200
    m = s3mount(proxy.env(rgw), pfx, env=kong_env(proxy.env(rgw)),
                opts=["freshness=0", "timeout=3"])
    with open(m.path("3.6.0.0", "config.json"), "rb") as f:
        assert f.read() == data

    # 503 SlowDown twice, then success: retried without the reader noticing. Any method:
    # with freshness=0 an open revalidates with a HEAD (lookup) or a conditional GET.
    proxy.reset_stats()
    proxy.add_fault("503", method="*", path=r"/config\.json$", count=2)
    with open(m.path("3.6.0.0", "config.json"), "rb") as f:
        assert f.read() == data
    st = proxy.stats()
    assert st["faults"].get("503") == 2
    assert [r[2] for r in st["requests"] if r[1].endswith("/config.json")][-1] in (200, 304)

    # a connection reset is retried
    proxy.reset_stats()
    proxy.add_fault("reset", method="*", path=r"/config\.json$", count=1)
    with open(m.path("3.6.0.0", "config.json"), "rb") as f:
        assert f.read() == data
    assert proxy.stats()["faults"].get("reset") == 1

    # a 10 s header delay with a 3 s deadline: ETIMEDOUT, promptly (never read: no cache)
    proxy.add_fault("delay", method="GET", path=r"/slow\.json$", count=-1, seconds=10)
    t0 = time.monotonic()
    with pytest.raises(OSError) as e:
        with open(m.path("3.6.0.0", "slow.json"), "rb") as f:
            f.read()
    took = time.monotonic() - t0
    assert e.value.errno == errno.ETIMEDOUT, e.value
    assert took < 5.0, took
    proxy.clear_faults()
    m.allow(r"slow\.json")  # the daemon logs the failed open


def test_write_faults(rgw, proxy, s3mount):
    pfx = prefix()
    m = s3mount(proxy.env(rgw), pfx, env=kong_env(proxy.env(rgw)), opts=["freshness=0"])
    os.makedirs(m.path("d"))
    # reset after the store applied the PUT: recognised as landed, not repeated
    proxy.reset_stats()
    proxy.add_fault("reset", method="PUT", path=r"/d/a\.json$", count=1, forward=True)
    with open(m.path("d", "a.json"), "wb") as f:
        f.write(b"A" * 1000)
    assert servers.s3_request(rgw, "GET", pfx + "/d/a.json")[2] == b"A" * 1000
    puts_a = [r for r in proxy.stats()["requests"] if r[0] == "PUT"]
    # reset before the store saw it: repeated (guarded by If-None-Match: *)
    proxy.reset_stats()
    proxy.add_fault("reset", method="PUT", path=r"/d/b\.json$", count=1)
    with open(m.path("d", "b.json"), "wb") as f:
        f.write(b"B" * 1000)
    assert servers.s3_request(rgw, "GET", pfx + "/d/b.json")[2] == b"B" * 1000
    # a multipart upload failing on its second part is aborted: no parts left behind
    proxy.add_fault("error", method="PUT", path=r"partNumber=2", count=-1, status=400,
                    code="InvalidArgument")
    with pytest.raises(OSError):
        with open(m.path("d", "big.bin"), "wb") as f:
            f.write(os.urandom(20 << 20))
    proxy.clear_faults()
    assert servers.s3_request(rgw, "HEAD", pfx + "/d/big.bin")[0] == 404
    assert uploads_in_progress(rgw) == 0
    m.allow(r"big\.bin")
    # libcurl resends by itself a request whose reused connection died before any answer
    # ("Connection died, retrying a fresh connect"); http.c refuses that for writes, so the
    # landed PUT was sent exactly once and recognised by its write id.
    assert len(puts_a) == 1, puts_a


def test_parallel_multipart_abort(rgw, proxy, s3mount):
    """Parts go up several at a time; a part failing while others are in flight still
    leaves no upload and no object behind, and a clean retry writes the right bytes."""
    pfx = prefix()
    env = kong_env(proxy.env(rgw), FALLBACKFS_S3_PART_SIZE=5 << 20)
    m = s3mount(proxy.env(rgw), pfx, env=env, opts=["freshness=0"])
    os.makedirs(m.path("d"))
    data = os.urandom(40 << 20)  # 8 parts of 5 MiB
    proxy.add_fault("delay", method="PUT", path=r"partNumber=[1-3]&", count=-1, seconds=0.5)
    proxy.add_fault("error", method="PUT", path=r"partNumber=4&", count=-1, status=400,
                    code="InvalidArgument")
    with pytest.raises(OSError):
        with open(m.path("d", "big.bin"), "wb") as f:
            f.write(data)
    st = proxy.stats()
    proxy.clear_faults()
    parts = [r for r in st["requests"] if r[0] == "PUT" and "/d/big.bin?partNumber=" in r[1]]
    attempts = collections.Counter(r[1].split("uploadId=")[1] for r in parts)
    # the upload streamed during the write, then the whole-body retry at close: each one
    # stopped at the failure instead of sending the remaining parts
    assert 1 <= len(attempts) <= 2 and all(n < 8 for n in attempts.values()), attempts
    assert servers.s3_request(rgw, "HEAD", pfx + "/d/big.bin")[0] == 404
    assert uploads_in_progress(rgw) == 0
    m.allow(r"big\.bin")
    proxy.reset_stats()
    with open(m.path("d", "big.bin"), "wb") as f:
        f.write(data)
    assert same(servers.s3_request(rgw, "GET", pfx + "/d/big.bin")[2], data)
    parts = [r for r in proxy.stats()["requests"]
             if r[0] == "PUT" and "/d/big.bin?partNumber=" in r[1]]
    assert len(parts) == 8 and all(r[2] == 200 for r in parts), parts
    assert uploads_in_progress(rgw) == 0


def test_read_only_mount_never_writes(rgw, proxy, s3mount):
    """-o ro: importers hold read-only credentials, so the mount must not even probe with
    a write. Every request it makes, from mount to unmount, is a GET or a HEAD."""
    pfx = prefix()
    data = b'{"_format_version": "3.0"}\n'
    assert servers.s3_request(rgw, "PUT", pfx + "/3.6.0.0/config.json", data)[0] == 200
    proxy.reset_stats()
    m = s3mount(proxy.env(rgw), pfx, env=kong_env(proxy.env(rgw)), opts=["ro", "freshness=0"])
    assert os.listdir(m.path("3.6.0.0")) == ["config.json"]
    with open(m.path("3.6.0.0", "config.json"), "rb") as f:
        assert f.read() == data
    with pytest.raises(OSError) as e:
        with open(m.path("3.6.0.0", "new.json"), "wb") as f:
            f.write(b"x")
    assert e.value.errno == errno.EROFS, e.value
    m.unmount()
    st = proxy.stats()
    assert st["total"] > 0
    assert set(st["by_method"]) <= {"GET", "HEAD"}, st["by_method"]
    assert not [r for r in st["requests"] if r[0] not in ("GET", "HEAD")], st["requests"]


# ---- cold reads of big objects: read while they download -------------------------------------

def gets_of(proxy, name):
    return [r for r in proxy.stats()["requests"] if r[0] == "GET" and r[1].endswith(name)]


def test_cold_big_read_starts_before_the_body_is_in(rgw, proxy, s3mount):
    """A big object never read on this mount: open() returns once the body starts to
    arrive and reads are served as it comes, each reader sees the whole version, a
    second reader joins the same download (one GET), and it lands in the cache."""
    pfx = prefix()
    data = os.urandom(8 << 20)
    assert servers.s3_request(rgw, "PUT", pfx + "/big.json", data)[0] == 200
    m = s3mount(proxy.env(rgw), pfx, env=kong_env(proxy.env(rgw)))
    proxy.add_fault("slow_body", method="GET", path=r"/big\.json$", count=1, seconds=4)
    t0 = time.monotonic()
    with open(m.path("big.json"), "rb") as f, open(m.path("big.json"), "rb") as g:
        first = f.read(1 << 20)
        t_first = time.monotonic() - t0
        rest = f.read()
        t_all = time.monotonic() - t0
        assert same(g.read(), data)
    assert same(first + rest, data)
    # the body was spread over 4 s; the first MiB did not wait for it all
    assert t_all > 3 and t_first < t_all - 1.5, (t_first, t_all)
    assert len(gets_of(proxy, "/big.json")) == 1
    with open(m.path("big.json"), "rb") as f:  # from the cache: a revalidation, no body
        assert same(f.read(), data)
    assert json.loads(open(m.path(".fallbackfs", "status")).read())["fs"]["fetches"] == 1


def test_cold_big_read_survives_a_cut_body(rgw, proxy, s3mount):
    """The connection dies mid-body: the download is retried for the same version and
    the reader gets every byte, once."""
    pfx = prefix()
    data = os.urandom(8 << 20)
    assert servers.s3_request(rgw, "PUT", pfx + "/big.json", data)[0] == 200
    m = s3mount(proxy.env(rgw), pfx, env=kong_env(proxy.env(rgw)))
    proxy.add_fault("truncate", method="GET", path=r"/big\.json$", count=1, bytes=3 << 20)
    with open(m.path("big.json"), "rb") as f:
        assert same(f.read(), data)
    assert proxy.stats()["faults"].get("truncate") == 1
    assert len(gets_of(proxy, "/big.json")) == 2


def test_cold_download_does_not_hide_a_newer_local_write(rgw, proxy, s3mount):
    """A version written on this mount while an older one is still downloading there:
    opens after the commit get the new version, not the download's, both while it runs
    (no joining it) and after it finished (within the freshness window, from memory)."""
    pfx = prefix()
    old, new = os.urandom(8 << 20), os.urandom(6 << 20)
    assert servers.s3_request(rgw, "PUT", pfx + "/big.json", old)[0] == 200
    m = s3mount(proxy.env(rgw), pfx, env=kong_env(proxy.env(rgw)), opts=["freshness=60"])
    proxy.add_fault("slow_body", method="GET", path=r"/big\.json$", count=1, seconds=5)
    with open(m.path("big.json"), "rb") as f:
        assert same(f.read(1 << 20), old[:1 << 20])
        with open(m.path("big.json"), "wb") as w:
            w.write(new)
        with open(m.path("big.json"), "rb") as g:  # the old body is still coming in
            assert same(g.read(), new)
        # f reads on: it shares the inode with this mount's writer (README, point 3)
        f.read()
    with open(m.path("big.json"), "rb") as f:
        assert same(f.read(), new)
    assert same(servers.s3_request(rgw, "GET", pfx + "/big.json")[2], new)
