"""The consistency contract (README "Guarantees"): never partial or mixed, fresh
within -o freshness, cheap when unchanged, the rename idiom as one put, O_EXCL
as create-only, touch refreshes, and state visible in the mount. Two mounts
over one store play gateway and exporter."""
import errno
import json
import os
import re
import subprocess
import tempfile
import threading
import time

import pytest

from churn import replace_while_reading
from conftest import read, requests, status, wait_for, write


def delta(after, before):
    return {k: after[k] - before[k] for k in after if after[k] != before[k]}


@pytest.fixture
def two(mounter, store_dir):
    url = "file://%s" % store_dir
    return mounter(url, name="a"), mounter(url, name="b")


def test_30mb_replaced_on_both_mounts_never_partial_or_mixed(mounter, store_dir):
    """Writers replace a 30 MB config.json on two mounts; readers on both
    checksum every read: each must be one whole version."""
    url = "file://%s" % store_dir
    a = mounter(url, name="a", opts=["freshness=0"])
    b = mounter(url, name="b", opts=["freshness=0"])
    g = mounter(url, name="g", opts=["freshness=0", "ro"])  # a gateway: read-only, page cache
    size = 30 * 1024 * 1024
    bodies = [bytes([65 + i]) * (size - 4096 * i) for i in range(4)]  # same and near sizes
    bodies.append(bytes([70]) * size)  # same size as bodies[0], other content
    write(a.path("config.json"), bodies[0])
    writes, reads, bad = replace_while_reading([a, b], [a, b, g, g], bodies, 8)
    assert writes >= 6 and reads >= 20, (writes, reads)
    assert bad == [], "%d of %d reads were not one whole version" % (len(bad), reads)


def test_reader_keeps_its_version_while_new_ones_commit(two):
    a, b = two
    old = b"old-" * 100000
    write(a.path("config.json"), old)
    for writer in (a, b):  # same mount, then the other mount
        with open(a.path("config.json"), "rb") as f:
            first = f.read(150000)
            write(writer.path("config.json"), b"NEW-" * 120000)
            time.sleep(1.1)
            rest = f.read()
        assert first + rest == old
        write(a.path("config.json"), old)


def test_write_on_one_mount_visible_on_other_within_freshness(two):
    a, b = two  # default freshness: 1 s
    write(a.path("config.json"), b"version-1")
    assert read(b.path("config.json")) == b"version-1"
    write(a.path("config.json"), b"version-2")  # same size, same second
    deadline = time.monotonic() + 1.5
    while read(b.path("config.json")) != b"version-2":
        assert time.monotonic() < deadline, "not visible within freshness"
        time.sleep(0.05)
    assert os.path.getsize(b.path("config.json")) == len(b"version-2")


def test_freshness_zero_sees_same_size_overwrite_at_once(mounter, store_dir):
    url = "file://%s" % store_dir
    a = mounter(url, name="a")
    b = mounter(url, name="b", opts=["freshness=0"])
    for i in range(20):
        body = b"v%04d" % i
        write(a.path("config.json"), body)
        assert read(b.path("config.json")) == body


def test_unchanged_reopen_is_cheap(two, store_dir):
    a, b = two
    write(a.path("config.json"), b"x" * 200000)
    assert read(b.path("config.json")) == b"x" * 200000
    before = requests(b)
    assert read(b.path("config.json")) == b"x" * 200000  # within freshness
    d = delta(requests(b), before)
    assert {k: v for k, v in d.items() if k != "read_bytes"} == {}, d
    time.sleep(1.2)  # past freshness: one conditional request, no body
    before = requests(b)
    assert read(b.path("config.json")) == b"x" * 200000
    d = delta(requests(b), before)
    store_requests = sum(d.get(k, 0) for k in ("head", "get", "put", "list", "delete", "touch"))
    assert store_requests == 1, d
    assert d.get("bytes_in", 0) == 0, d


def test_unchanged_content_served_by_kernel_page_cache(mounter, store_dir):
    url = "file://%s" % store_dir
    w = mounter(url, name="w")
    g = mounter(url, name="g", opts=["ro", "freshness=0"])
    body = os.urandom(1 << 20)
    write(w.path("config.json"), body)
    assert read(g.path("config.json")) == body
    before = requests(g)
    for _ in range(3):
        assert read(g.path("config.json")) == body
    d = delta(requests(g), before)
    assert d.get("read_bytes", 0) == 0, d  # served by the page cache
    # freshness=0: one conditional request per open, no body
    assert d.get("bytes_in", 0) == 0 and d.get("head", 0) + d.get("get", 0) == 3, d
    # a same-size change must not be served from the stale page cache
    body2 = os.urandom(1 << 20)
    write(w.path("config.json"), body2)
    assert read(g.path("config.json")) == body2


def test_ls_l_costs_one_list(two):
    a, b = two
    os.makedirs(a.path("v", "election"))
    for i in range(50):
        write(a.path("v", "election", "%d.0-node-%02d" % (1700000000 + i, i)), b"")
    time.sleep(1.2)
    os.stat(b.path("v", "election"))  # resolving the path itself is not the listing
    before = requests(b)
    out = subprocess.run(["ls", "-l", b.path("v", "election")], capture_output=True,
                         text=True, check=True).stdout
    assert out.count("node-") == 50
    d = delta(requests(b), before)
    assert d.get("list") == 1 and not d.get("head") and not d.get("get"), d


def test_rename_idiom_is_one_put_and_target_never_missing(two, store_dir):
    a, b = two
    write(a.path("config.json"), b"{}")
    missing = []
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            try:
                read(b.path("config.json"))
            except FileNotFoundError:
                missing.append(time.monotonic())

    t = threading.Thread(target=watch)
    t.start()
    try:
        for i, tmpname in enumerate(["config.json.tmp", ".config.json.Xa1b2c", "tmpk2j3h4"]):
            before = requests(a)
            body = json.dumps({"_format_version": "3.0", "round": i}).encode()
            with open(a.path(tmpname), "wb") as f:
                f.write(body)
                f.flush()
                os.fsync(f.fileno())
            assert not os.path.exists(os.path.join(str(store_dir), tmpname))
            os.rename(a.path(tmpname), a.path("config.json"))
            d = delta(requests(a), before)
            assert d.get("put") == 1 and not d.get("delete"), (tmpname, d)
            assert read(os.path.join(str(store_dir), "config.json")) == body
            assert not os.path.exists(a.path(tmpname))
        # Python's own atomic-write pattern, in the same directory
        before = requests(a)
        fd, tmp = tempfile.mkstemp(dir=a.mnt)
        os.write(fd, b'{"python": true}')
        os.close(fd)
        os.replace(tmp, a.path("config.json"))
        assert delta(requests(a), before).get("put") == 1
        # sed -i
        before = requests(a)
        subprocess.run(["sed", "-i", "s/python/sed/", a.path("config.json")], check=True)
        assert read(a.path("config.json")) == b'{"sed": true}'
        assert delta(requests(a), before).get("put") == 1
    finally:
        stop.set()
        t.join()
    assert missing == []
    assert sorted(os.listdir(str(store_dir))) == [".fallbackfs", "config.json"]


def test_excl_create_race_between_two_mounts(two, store_dir):
    a, b = two
    for round_ in range(5):
        name = "lock-%d" % round_
        fds = []
        for m in (a, b):
            fds.append((m, os.open(m.path(name), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)))
        wins, losses = 0, 0
        for m, fd in fds:
            os.write(fd, m.mnt.encode())
            try:
                os.close(fd)
                wins += 1
            except OSError as e:
                assert e.errno == errno.EEXIST
                losses += 1
        assert (wins, losses) == (1, 1)
        assert read(os.path.join(str(store_dir), name)) in (a.mnt.encode(), b.mnt.encode())
    # on one mount the kernel already knows the file exists
    with pytest.raises(FileExistsError):
        os.open(a.path("lock-0"), os.O_WRONLY | os.O_CREAT | os.O_EXCL)


def test_touch_refreshes_store_mtime(mount, store_dir):
    name = "1704921469.123-30128332-39a4-4bc5-8435-9230693f4bec"
    os.makedirs(mount.path("v", "election"))
    open(mount.path("v", "election", name), "w").close()
    backing = os.path.join(str(store_dir), "v", "election", name)
    wait_for(lambda: os.path.exists(backing), what="election entry")
    m1 = os.stat(backing).st_mtime_ns
    time.sleep(0.05)
    subprocess.run(["touch", mount.path("v", "election", name)], check=True)
    m2 = os.stat(backing).st_mtime_ns
    assert m2 > m1
    assert os.stat(mount.path("v", "election", name)).st_mtime_ns == m2
    assert os.path.getsize(backing) == 0
    # a time other than now cannot be honoured by a store: refused, not faked
    r = subprocess.run(["touch", "-d", "2001-01-01", mount.path("v", "election", name)],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "not permitted" in r.stderr
    assert os.stat(backing).st_mtime_ns == m2


def test_xattrs(two, store_dir):
    a, b = two
    write(a.path("config.json"), b"{}")
    assert read(b.path("config.json")) == b"{}"
    names = os.listxattr(b.path("config.json"))
    assert sorted(names) == ["user.fallbackfs.etag", "user.fallbackfs.fetched_at",
                             "user.fallbackfs.source"]
    etag_a = os.getxattr(a.path("config.json"), "user.fallbackfs.etag")
    etag_b = os.getxattr(b.path("config.json"), "user.fallbackfs.etag")
    assert etag_a == etag_b and etag_a
    assert os.getxattr(b.path("config.json"), "user.fallbackfs.source") == b"store"
    fetched = os.getxattr(b.path("config.json"), "user.fallbackfs.fetched_at").decode()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", fetched)
    assert abs(time.mktime(time.strptime(fetched, "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
               - time.time()) < 120
    write(a.path("config.json"), b"{ }")
    time.sleep(1.1)
    assert read(b.path("config.json")) == b"{ }"
    assert os.getxattr(b.path("config.json"), "user.fallbackfs.etag") != etag_b
    with pytest.raises(OSError) as e:
        os.setxattr(a.path("config.json"), "user.fallbackfs.etag", b"forged")
    assert e.value.errno in (errno.ENOTSUP, errno.EOPNOTSUPP)
    with pytest.raises(OSError) as e:
        os.getxattr(a.path("config.json"), "user.other")
    assert e.value.errno == errno.ENODATA


def test_status_and_metrics(mount):
    write(mount.path("config.json"), b'{"_format_version": "3.0"}')
    read(mount.path("config.json"))
    assert sorted(os.listdir(mount.path(".fallbackfs"))) == ["metrics", "status"]
    st = status(mount)
    assert st["url"].startswith("file://")
    assert st["store"]["reachable"] is True and st["store"]["last_error"] is None
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", st["store"]["last_success"])
    assert st["store"]["requests"]["put"] == 1
    assert st["store"]["bytes_out"] == 26
    assert st["cache"]["bytes"] > 0 and st["fs"]["commits"] == 1
    metrics = read(mount.path(".fallbackfs", "metrics")).decode()
    line = re.compile(r'^fallbackfs_[a-z_]+(\{[a-z]+="[a-z]+"\})? \d+$')
    for l in metrics.splitlines():
        assert l.startswith("# HELP ") or l.startswith("# TYPE ") or line.match(l), l
    assert 'fallbackfs_store_requests_total{op="put"} 1' in metrics
    assert "fallbackfs_store_up 1" in metrics
    # read-only, and not part of the store's namespace
    for action in (lambda: open(mount.path(".fallbackfs", "status"), "w"),
                   lambda: open(mount.path(".fallbackfs", "new"), "w"),
                   lambda: os.mkdir(mount.path(".fallbackfs", "d"))):
        with pytest.raises(OSError) as e:
            action()
        assert e.value.errno in (errno.EACCES, errno.EPERM, errno.EROFS)
