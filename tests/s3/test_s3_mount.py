"""The mount over Ceph RGW: the core behaviour and the consistency contract,
with the real daemon on real FUSE mounts and real S3 semantics (signatures,
conditional writes, LastModified). Fixtures (rgw, kong_env, aws) come from
conftest.py beside this file."""
import errno
import json
import os
import re
import subprocess
import time
import uuid

import pytest

from conftest import (S3_ALLOWED, aws, kong_env, mh, read, requests, same, servers,
                      uploads_in_progress, write)
from churn import replace_while_reading
from posix_ops import apply_ops


@pytest.fixture
def prefix():
    return "mount-%s" % uuid.uuid4().hex[:12]


@pytest.fixture
def s3mounts(rgw, prefix, tmp_path):
    """Factory: s3mounts(name, opts=(), env=None) -> a mount of s3://bucket/prefix."""
    made = []

    def make(name, opts=(), env=None, allowed=()):
        m = mh.Mount("s3://%s/%s" % (rgw["S3_BUCKET"], prefix), tmp_path / name,
                     tmp_path / (name + "-cache"), list(opts), env or kong_env(rgw),
                     S3_ALLOWED + list(allowed))
        made.append(m)
        return m

    yield make
    mh.unmount_all(made)


def test_kong_layout_and_interop(s3mounts, rgw, prefix, tmp_path):
    a = s3mounts("a")
    os.makedirs(a.path("3.6.0.0", "election"))
    config = json.dumps({"_format_version": "3.0", "services": []}).encode()
    write(a.path("3.6.0.0", "config.json"), config)
    name = "1704921469.123-30128332-39a4-4bc5-8435-9230693f4bec"
    with open(a.path("3.6.0.0", "election", name), "wb") as f:
        os.fsync(f.fileno())  # commit now, and see the error if any
    assert sorted(os.listdir(a.path("3.6.0.0"))) == ["config.json", "election"]
    assert os.listdir(a.path("3.6.0.0", "election")) == [name]
    out = tmp_path / "via-aws.json"
    aws(rgw, "s3", "cp", "s3://%s/%s/3.6.0.0/config.json" % (rgw["S3_BUCKET"], prefix), str(out))
    assert out.read_bytes() == config
    head = json.loads(aws(rgw, "s3api", "head-object", "--bucket", rgw["S3_BUCKET"], "--key",
                          "%s/3.6.0.0/config.json" % prefix, "--output", "json").stdout)
    assert head["ContentType"] == "application/json"
    assert os.getxattr(a.path("3.6.0.0", "config.json"),
                       "user.fallbackfs.etag").decode().strip('"') == head["ETag"].strip('"')


@pytest.mark.parametrize("ops", [
    [("write", b"hello world"), ("append", b"!!"), ("append", b"??")],
    [("write", b"0123456789"), ("pwrite", b"ab", 3), ("pwrite", b"XYZ", 12)],
    [("write", b"0123456789"), ("truncate", 4), ("append", b"-end")],
    [("write", b"0123456789"), ("otrunc",), ("append", b"fresh")],
])
def test_posix_semantics_match_local_disk(s3mounts, tmp_path, ops):
    a = s3mounts("a")
    local = str(tmp_path / "local.bin")
    apply_ops(local, ops)
    apply_ops(a.path("remote.bin"), ops)
    assert read(a.path("remote.bin")) == read(local)


def test_never_partial_or_mixed_across_mounts(s3mounts):
    a = s3mounts("a", ["freshness=0"])
    b = s3mounts("b", ["freshness=0"])
    g = s3mounts("g", ["freshness=0", "ro"])
    size = 5 * 1024 * 1024
    bodies = [bytes([65 + i]) * (size - 4096 * i) for i in range(3)] + [b"Z" * size]
    write(a.path("config.json"), bodies[0])
    writes, reads, bad = replace_while_reading([a, b], [a, b, g], bodies, 6)
    assert writes >= 4 and reads >= 10, (writes, reads)
    assert bad == []


def test_fresh_on_other_mount_and_cheap_when_unchanged(s3mounts):
    a = s3mounts("a")
    b = s3mounts("b")
    write(a.path("config.json"), b"version-1")
    assert read(b.path("config.json")) == b"version-1"
    write(a.path("config.json"), b"version-2")  # same size, same second
    deadline = time.monotonic() + 1.5
    while read(b.path("config.json")) != b"version-2":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(1.2)
    before = requests(b)
    assert read(b.path("config.json")) == b"version-2"
    after = requests(b)
    assert sum(after[k] - before[k] for k in ("head", "get", "list")) == 1
    assert after["bytes_in"] == before["bytes_in"]


def test_rename_idiom_is_one_put(s3mounts, rgw, prefix):
    a = s3mounts("a")
    write(a.path("config.json"), b"{}")
    before = requests(a)
    with open(a.path("config.json.tmp"), "wb") as f:
        f.write(b'{"new": true}')
        os.fsync(f.fileno())
    os.rename(a.path("config.json.tmp"), a.path("config.json"))
    after = requests(a)
    assert after["put"] - before["put"] == 1 and after["delete"] == before["delete"]
    listing = json.loads(aws(rgw, "s3api", "list-objects-v2", "--bucket", rgw["S3_BUCKET"],
                             "--prefix", prefix + "/", "--output", "json").stdout)
    assert [o["Key"] for o in listing["Contents"]] == [prefix + "/config.json"]


def test_excl_race_between_mounts(s3mounts):
    a = s3mounts("a")
    b = s3mounts("b")
    for r in range(3):
        fds = [(m, os.open(m.path("lock-%d" % r), os.O_WRONLY | os.O_CREAT | os.O_EXCL))
               for m in (a, b)]
        outcomes = []
        for m, fd in fds:
            os.write(fd, m.mnt.encode())
            try:
                os.close(fd)
                outcomes.append("won")
            except OSError as e:
                assert e.errno == errno.EEXIST
                outcomes.append("lost")
        assert sorted(outcomes) == ["lost", "won"]


def test_touch_refreshes_last_modified(s3mounts, rgw, prefix):
    a = s3mounts("a")
    os.makedirs(a.path("v", "election"))
    with open(a.path("v", "election", "node"), "wb") as f:
        os.fsync(f.fileno())

    def last_modified():
        return json.loads(aws(rgw, "s3api", "head-object", "--bucket", rgw["S3_BUCKET"],
                              "--key", "%s/v/election/node" % prefix,
                              "--output", "json").stdout)["LastModified"]

    t1 = last_modified()
    time.sleep(1.1)  # S3 times have one-second resolution
    subprocess.run(["touch", a.path("v", "election", "node")], check=True)
    assert last_modified() != t1


def test_ls_l_costs_one_list(s3mounts):
    a = s3mounts("a")
    b = s3mounts("b")
    os.makedirs(a.path("v", "election"))
    for i in range(30):
        with open(a.path("v", "election", "%d.0-node-%02d" % (1700000000 + i, i)), "wb") as f:
            os.fsync(f.fileno())
    time.sleep(1.2)
    os.stat(b.path("v", "election"))
    before = requests(b)
    out = subprocess.run(["ls", "-l", b.path("v", "election")], capture_output=True,
                         text=True, check=True).stdout
    assert out.count("node-") == 30
    after = requests(b)
    assert after["list"] - before["list"] == 1
    assert after["head"] == before["head"] and after["get"] == before["get"]


def test_close_reports_upload_failure_and_keeps_old_version(rgw, prefix, tmp_path):
    with servers.FaultyProxy(rgw["S3_ENDPOINT"]) as proxy:
        env = kong_env(rgw, AWS_CONFIG_STORAGE_ENDPOINT=proxy.endpoint)
        m = mh.Mount("s3://%s/%s" % (rgw["S3_BUCKET"], prefix), tmp_path / "m",
                     tmp_path / "m-cache", ["timeout=5"], env,
                     S3_ALLOWED + [r"upload config\.json: "])
        try:
            write(m.path("config.json"), b"good version")
            proxy.add_fault("500", method="PUT", count=1000)
            f = open(m.path("config.json"), "wb")
            f.write(b"bad version")
            with pytest.raises(OSError) as e:
                f.close()
            assert e.value.errno in (errno.EIO, errno.ETIMEDOUT)
            proxy.clear_faults()
            assert read(m.path("config.json")) == b"good version"
        finally:
            m.unmount()


def test_excl_refused_where_the_store_cannot_enforce_it(s3rver, prefix, tmp_path):
    """s3rver ignores If-None-Match: O_EXCL must fail, not pretend."""
    m = mh.Mount("s3://%s/%s" % (s3rver["S3_BUCKET"], prefix), tmp_path / "m",
                 tmp_path / "m-cache", [], kong_env(s3rver),
                 S3_ALLOWED + [r"O_EXCL asked for, but this store cannot enforce"])
    try:
        write(m.path("plain.json"), b"{}")  # ordinary writes work
        fd = os.open(m.path("lock"), os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        os.write(fd, b"x")
        with pytest.raises(OSError) as e:
            os.close(fd)
        assert e.value.errno == errno.EOPNOTSUPP
        assert not os.path.exists(m.path("lock"))
    finally:
        m.unmount()


# ---- uploads that stream while the file is written -------------------------------------------

# 5 MiB parts, and streaming from 5 MiB on (the threshold follows the part size)
STREAM_ENV = dict(FALLBACKFS_S3_PART_SIZE=5 << 20)


def parts_uploaded(server, prefix):
    """Parts already in the store for the one upload in progress under prefix."""
    st, _, body = servers.s3_request(server, "GET", "", query={"uploads": "", "prefix": prefix})
    ids = re.findall(rb"<Key>([^<]*)</Key>\s*<UploadId>([^<]*)</UploadId>", body)
    if len(ids) != 1:
        return 0
    key, upload_id = (x.decode() for x in ids[0])
    st, _, body = servers.s3_request(server, "GET", key, query={"uploadId": upload_id})
    return body.count(b"<Part>") if st == 200 else 0


def test_big_write_goes_up_before_close(s3mounts, rgw, prefix):
    """Written front to back, a big config is uploaded while it is written: parts are in
    the store before close(), nobody sees anything new until close(), which publishes
    it whole, and no upload is left behind."""
    m = s3mounts("w", env=kong_env(rgw, **STREAM_ENV))
    other = s3mounts("r", opts=["freshness=0"])
    write(m.path("config.json"), b"old")
    data = os.urandom(24 << 20)
    fd = os.open(m.path("config.json"), os.O_WRONLY | os.O_TRUNC)
    try:
        for off in range(0, 16 << 20, 1 << 20):
            os.write(fd, data[off:off + (1 << 20)])
        mh.wait_for(lambda: parts_uploaded(rgw, prefix) >= 2, 20, "parts before close")
        assert read(other.path("config.json")) == b"old"
        assert servers.s3_request(rgw, "GET", prefix + "/config.json")[2] == b"old"
        os.write(fd, data[16 << 20:])
    finally:
        os.close(fd)
    assert same(read(other.path("config.json")), data)
    assert same(servers.s3_request(rgw, "GET", prefix + "/config.json")[2], data)
    assert uploads_in_progress(rgw, prefix) == 0


@pytest.mark.parametrize("change", ["overwrite", "truncate", "unlink"])
def test_streamed_write_that_changes_course(s3mounts, rgw, prefix, change):
    """Once the upload has started, a write that goes back, a truncate or an unlink
    cancels it (abort: no parts left behind) and close() does what it always does."""
    m = s3mounts("w", env=kong_env(rgw, **STREAM_ENV))
    path = m.path("big.bin")
    data = bytearray(os.urandom(12 << 20))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        os.write(fd, data)
        mh.wait_for(lambda: parts_uploaded(rgw, prefix) >= 1, 20, "a part before close")
        if change == "overwrite":
            os.pwrite(fd, b"HEADER", 100)
            data[100:106] = b"HEADER"
        elif change == "truncate":
            os.ftruncate(fd, 1 << 20)
            del data[1 << 20:]
        else:
            os.unlink(path)
        assert uploads_in_progress(rgw, prefix) == 0  # cancelled at once
        if change != "unlink":
            os.lseek(fd, 0, os.SEEK_END)  # ftruncate leaves the offset where it was
            os.write(fd, b"tail")
            data += b"tail"
    finally:
        os.close(fd)
    st, _, body = servers.s3_request(rgw, "GET", prefix + "/big.bin")
    if change == "unlink":
        assert st == 404 and not os.path.exists(path)
    else:
        assert st == 200 and same(body, bytes(data))
        assert same(read(path), bytes(data))
    assert uploads_in_progress(rgw, prefix) == 0
