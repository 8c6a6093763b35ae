"""Core mount behaviour over the file:// store: plain file I/O against a real
FUSE mount, compared with the backing store and with a local disk."""
import errno
import json
import os
import signal
import stat
import subprocess

import pytest

from conftest import BINARY, is_mounted, read, wait_for
from churn import replace_while_reading
from posix_ops import apply_ops

CONFIG = b'{"_format_version": "3.0", "_transform": false, "services": []}\n'


def put_direct(store_dir, key, data):
    """Write an object into the file:// store as another writer would."""
    path = os.path.join(str(store_dir), key)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".direct-tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.rename(tmp, path)


def test_kong_layout_roundtrip(mount, store_dir):
    os.makedirs(mount.path("3.6.0.0", "election"))
    with open(mount.path("3.6.0.0", "config.json"), "wb") as f:
        f.write(CONFIG)
    open(mount.path("3.6.0.0", "election", "1704921469.123-30128332-39a4"), "w").close()
    assert read(mount.path("3.6.0.0", "config.json")) == CONFIG
    assert read(str(store_dir / "3.6.0.0" / "config.json")) == CONFIG
    entry = store_dir / "3.6.0.0" / "election" / "1704921469.123-30128332-39a4"
    wait_for(entry.exists, what="election entry (committed at release)")
    assert entry.stat().st_size == 0
    assert sorted(os.listdir(mount.mnt)) == [".fallbackfs", "3.6.0.0"]
    assert sorted(os.listdir(mount.path("3.6.0.0"))) == ["config.json", "election"]
    st = os.stat(mount.path("3.6.0.0", "config.json"))
    backing = os.stat(str(store_dir / "3.6.0.0" / "config.json"))
    assert st.st_size == len(CONFIG)
    assert abs(st.st_mtime - backing.st_mtime) < 0.001
    out = subprocess.run(["ls", "-l", mount.path("3.6.0.0")], capture_output=True, text=True,
                         check=True).stdout
    assert "config.json" in out and "election" in out


def test_default_modes_and_owner(mount):
    os.mkdir(mount.path("d"))
    with open(mount.path("d", "f"), "w") as f:
        f.write("x")
    assert stat.S_IMODE(os.stat(mount.path("d", "f")).st_mode) == 0o640
    assert stat.S_IMODE(os.stat(mount.path("d")).st_mode) == 0o750
    assert os.stat(mount.path("d", "f")).st_uid == os.getuid()


def test_uid_gid_umask_options(mounter, store_dir):
    put_direct(store_dir, "v/config.json", CONFIG)
    m = mounter("file://%s" % store_dir, opts=["uid=1234", "gid=4321", "umask=022",
                                               "allow_other"])
    st = os.stat(m.path("v", "config.json"))
    assert (st.st_uid, st.st_gid) == (1234, 4321)
    assert stat.S_IMODE(st.st_mode) == 0o644
    assert stat.S_IMODE(os.stat(m.path("v")).st_mode) == 0o755


def test_reads_new_versions_written_elsewhere(mounter, store_dir):
    m = mounter("file://%s" % store_dir, opts=["freshness=0"])
    put_direct(store_dir, "v/config.json", b"one")
    assert read(m.path("v", "config.json")) == b"one"
    put_direct(store_dir, "v/config.json", b"two, longer")
    assert read(m.path("v", "config.json")) == b"two, longer"
    put_direct(store_dir, "v/config.json", b"3")
    assert read(m.path("v", "config.json")) == b"3"
    os.unlink(str(store_dir / "v" / "config.json"))
    with pytest.raises(FileNotFoundError):
        read(m.path("v", "config.json"))


def test_write_is_invisible_until_close(mount, store_dir):
    put_direct(store_dir, "v/config.json", b"old version")
    fd = os.open(mount.path("v", "config.json"), os.O_WRONLY | os.O_TRUNC)
    os.write(fd, b"new version, part 1;")
    assert read(str(store_dir / "v" / "config.json")) == b"old version"
    # a reader on the same mount sees the committed version, whole
    assert read(mount.path("v", "config.json")) == b"old version"
    os.write(fd, b" part 2")
    os.close(fd)
    assert read(str(store_dir / "v" / "config.json")) == b"new version, part 1; part 2"
    assert read(mount.path("v", "config.json")) == b"new version, part 1; part 2"


def test_fsync_commits(mount, store_dir):
    fd = os.open(mount.path("f.json"), os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"abc")
    assert not (store_dir / "f.json").exists()
    os.fsync(fd)
    assert read(str(store_dir / "f.json")) == b"abc"
    os.write(fd, b"def")
    os.close(fd)
    assert read(str(store_dir / "f.json")) == b"abcdef"


def test_new_empty_file_is_an_object(mount, store_dir):
    # nothing written: committed at release, which the kernel sends after close()
    subprocess.run(["touch", mount.path("empty")], check=True)
    wait_for(lambda: (store_dir / "empty").exists(), what="empty object")
    assert (store_dir / "empty").stat().st_size == 0
    assert os.path.getsize(mount.path("empty")) == 0


def test_shell_redirect_is_one_put(mount, store_dir):
    # bash opens, dup2()s and closes the first descriptor before writing
    subprocess.run(["bash", "-c", "echo '{\"a\": 1}' > %s" % mount.path("c.json")], check=True)
    assert read(str(store_dir / "c.json")) == b'{"a": 1}\n'
    status = json.loads(read(mount.path(".fallbackfs", "status")))
    assert status["store"]["requests"]["put"] == 1


@pytest.mark.parametrize("ops", [
    [("write", b"hello world"), ("append", b"!!"), ("append", b"??")],
    [("write", b"0123456789"), ("pwrite", b"ab", 3), ("pwrite", b"XYZ", 12)],
    [("write", b"0123456789"), ("truncate", 4), ("append", b"-end")],
    [("write", b"0123456789"), ("truncate", 20), ("pwrite", b"z", 25)],
    [("write", b"0123456789"), ("ftruncate", 2), ("rw", b"Q", 1)],
    [("write", b"0123456789"), ("otrunc",), ("append", b"fresh")],
    [("write", b"x" * 300000), ("pwrite", b"middle", 150000), ("truncate", 200001)],
])
def test_posix_semantics_match_local_disk(mount, tmp_path, ops):
    local = str(tmp_path / "local.bin")
    remote = mount.path("remote.bin")
    apply_ops(local, ops)
    apply_ops(remote, ops)
    assert read(remote) == read(local)
    assert os.stat(remote).st_size == os.stat(local).st_size


def test_unlink_mkdir_rmdir(mount, store_dir):
    os.makedirs(mount.path("v", "election"))
    assert os.path.isdir(mount.path("v", "election"))
    with open(mount.path("v", "election", "node"), "w") as f:
        f.write("")
    with pytest.raises(OSError) as e:
        os.rmdir(mount.path("v", "election"))
    assert e.value.errno == errno.ENOTEMPTY
    os.unlink(mount.path("v", "election", "node"))
    assert not (store_dir / "v").exists()  # the store keeps no empty prefixes
    os.rmdir(mount.path("v", "election"))
    assert not os.path.exists(mount.path("v", "election"))
    with pytest.raises(FileNotFoundError):
        os.unlink(mount.path("nothing"))
    with pytest.raises(FileNotFoundError):
        open(mount.path("no", "such", "dir", "file"), "w")


def test_rename_committed_object(mount, store_dir):
    with open(mount.path("a.json"), "w") as f:
        f.write("A")
    os.rename(mount.path("a.json"), mount.path("b.json"))
    assert not (store_dir / "a.json").exists()
    assert read(str(store_dir / "b.json")) == b"A"
    assert sorted(os.listdir(mount.mnt)) == [".fallbackfs", "b.json"]


def test_big_file_cp_and_cmp(mount, tmp_path, store_dir):
    src = tmp_path / "big.json"
    src.write_bytes(os.urandom(30 * 1024 * 1024))
    subprocess.run(["cp", str(src), mount.path("config.json")], check=True)
    subprocess.run(["cmp", str(src), mount.path("config.json")], check=True)
    subprocess.run(["cmp", str(src), str(store_dir / "config.json")], check=True)


def test_close_returns_upload_error_and_keeps_old_version(mounter, tmp_path):
    small = tmp_path / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(small)], check=True)
    try:
        m = mounter("file://%s" % small, allowed=[r"upload config\.json: store out of space"])
        with open(m.path("config.json"), "wb") as f:
            f.write(b"good version")
        f = open(m.path("config.json"), "wb")
        f.write(os.urandom(3 * 1024 * 1024))
        with pytest.raises(OSError) as e:
            f.close()
        assert e.value.errno == errno.ENOSPC
        assert read(m.path("config.json")) == b"good version"
        assert read(str(small / "config.json")) == b"good version"
        # fsync reports it too
        fd = os.open(m.path("config.json"), os.O_WRONLY | os.O_TRUNC)
        os.write(fd, os.urandom(3 * 1024 * 1024))
        with pytest.raises(OSError) as e:
            os.fsync(fd)
        assert e.value.errno == errno.ENOSPC
        with pytest.raises(OSError) as e:  # still staged: close tries again
            os.close(fd)
        assert e.value.errno == errno.ENOSPC
        assert read(str(small / "config.json")) == b"good version"
        assert os.listdir(str(small / ".fallbackfs" / "tmp")) == []
        m.unmount()
    finally:
        subprocess.run(["umount", "-l", str(small)])


def test_read_only_mount(mounter, store_dir):
    put_direct(store_dir, "v/config.json", CONFIG)
    m = mounter("file://%s" % store_dir, opts=["ro"])
    assert read(m.path("v", "config.json")) == CONFIG
    for action in (lambda: open(m.path("v", "config.json"), "wb"),
                   lambda: open(m.path("v", "new"), "w"),
                   lambda: os.unlink(m.path("v", "config.json")),
                   lambda: os.mkdir(m.path("d")),
                   lambda: os.rename(m.path("v", "config.json"), m.path("x")),
                   lambda: os.truncate(m.path("v", "config.json"), 0)):
        with pytest.raises(OSError) as e:
            action()
        assert e.value.errno == errno.EROFS
    assert read(str(store_dir / "v" / "config.json")) == CONFIG


def test_fstab_options_are_accepted(mounter, store_dir):
    put_direct(store_dir, "v/config.json", CONFIG)
    m = mounter("file://%s" % store_dir,
                opts=["_netdev", "auto", "noauto", "user", "nofail", "defaults", "rw",
                      "x-systemd.automount", "comment=kong"])
    assert read(m.path("v", "config.json")) == CONFIG


def test_mount_via_mount8_fstab_style(tmp_path, store_dir):
    """`mount -t fuse.fallbackfs URL DIR -o _netdev,ro`, as an fstab line does."""
    put_direct(store_dir, "v/config.json", CONFIG)
    mnt = tmp_path / "fstab-mnt"
    mnt.mkdir()
    # mount(8) runs helpers with its own PATH: put the binary on it, as an install would.
    link = "/usr/local/bin/fallbackfs"
    made_link = not os.path.lexists(link)
    if made_link:
        os.symlink(BINARY, link)
    try:
        r = subprocess.run(["mount", "-t", "fuse.fallbackfs", "file://%s" % store_dir, str(mnt),
                            "-o", "_netdev,ro,nofail,cache_dir=%s" % (tmp_path / "fc")],
                           capture_output=True, text=True, timeout=30)
    finally:
        if made_link:
            os.unlink(link)
    assert r.returncode == 0, r.stderr
    try:
        assert read(str(mnt / "v" / "config.json")) == CONFIG
        with pytest.raises(OSError) as e:
            open(str(mnt / "v" / "x"), "w")
        assert e.value.errno == errno.EROFS
    finally:
        subprocess.run(["umount", str(mnt)], check=True, timeout=30)


@pytest.mark.parametrize("url,words", [
    ("http://bucket/x", "unsupported storage URL"),
    ("file://relative/dir", "absolute"),
    ("file:///no/such/dir/anywhere", "No such file or directory"),
    ("s3://UPPER/x", "bucket name"),
    ("s3://bucket/../x", "segment"),
])
def test_bad_urls_fail_on_the_terminal(tmp_path, url, words):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    r = subprocess.run([BINARY, url, str(mnt), "-o", "cache_dir=%s" % (tmp_path / "c")],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert words in r.stderr
    assert not is_mounted(str(mnt))


def test_store_path_that_is_a_file(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    r = subprocess.run([BINARY, "file://%s" % f, str(mnt)], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode != 0 and "Not a directory" in r.stderr


def test_bad_options(tmp_path, store_dir):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    for opt, words in (("freshness=soon", "freshness"), ("addressing=vhost", "addressing"),
                       ("no_such_option", "unknown option"), ("umask=999", "umask")):
        r = subprocess.run([BINARY, "file://%s" % store_dir, str(mnt), "-o", opt],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode != 0 and words in r.stderr, (opt, r.stderr)
    r = subprocess.run([BINARY, "file://%s" % store_dir, str(tmp_path / "nomnt")],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and "mountpoint" in r.stderr
    r = subprocess.run([BINARY, "--help"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "STORAGE_URL MOUNTPOINT" in r.stdout
    r = subprocess.run([BINARY, "--version"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and r.stdout.startswith("fallbackfs ")


def test_sigterm_unmounts_cleanly(mounter, store_dir):
    m = mounter("file://%s" % store_dir)
    with open(m.path("f"), "w") as f:
        f.write("x")
    m.proc.send_signal(signal.SIGTERM)
    m.proc.wait(timeout=30)
    assert m.proc.returncode == 0
    assert not is_mounted(m.mnt)


def test_sigterm_right_after_close_loses_nothing(mounter, store_dir):
    """A new file closed with nothing written commits at release; a SIGTERM
    that ends the daemon before the kernel's release must not lose it."""
    for i in range(5):
        m = mounter("file://%s" % store_dir, name="m%d" % i)
        open(m.path("entry-%d" % i), "w").close()
        m.proc.send_signal(signal.SIGTERM)
        m.proc.wait(timeout=30)
        assert m.proc.returncode == 0
        assert (store_dir / ("entry-%d" % i)).exists()


def test_sigterm_mid_write_publishes_nothing_partial(mounter, store_dir):
    m = mounter("file://%s" % store_dir,
                allowed=[r"unmounting: config\.json is still open for writing"])
    with open(m.path("config.json"), "wb") as f:
        f.write(b"complete version")
    f = open(m.path("config.json"), "wb")
    f.write(b"half of a new vers")
    f.flush()  # in the staging file, not committed: the writer has not closed
    m.proc.send_signal(signal.SIGTERM)
    m.proc.wait(timeout=30)
    assert m.proc.returncode == 0
    assert read(str(store_dir / "config.json")) == b"complete version"
    try:
        f.close()
    except OSError:
        pass  # the mount is gone


def test_background_daemon(tmp_path, store_dir):
    mnt = tmp_path / "bg"
    mnt.mkdir()
    r = subprocess.run([BINARY, "file://%s" % store_dir, str(mnt), "-o",
                        "cache_dir=%s" % (tmp_path / "bgc")],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""  # detached: logs go to syslog
    try:
        assert is_mounted(str(mnt))
        with open(str(mnt / "x.json"), "w") as f:
            f.write("{}")
        assert read(str(store_dir / "x.json")) == b"{}"
    finally:
        subprocess.run(["fusermount3", "-u", str(mnt)], check=True, timeout=30)
    wait_for(lambda: not is_mounted(str(mnt)), what="unmount")


def test_no_content_or_secret_in_debug_log(mounter, store_dir):
    m = mounter("file://%s" % store_dir, opts=["debug"], allowed=[r".*"])
    secret = "sk-SECRET-4f1b9c"
    with open(m.path("config.json"), "w") as f:
        f.write('{"password": "%s"}' % secret)
    assert secret in read(m.path("config.json")).decode()
    m.unmount()
    assert secret not in m.stderr()


def test_concurrent_writers_two_mounts_never_mixed(mounter, store_dir):
    """Writers on two mounts replace config.json; every read is one whole version."""
    a = mounter("file://%s" % store_dir, name="a", opts=["freshness=0"])
    b = mounter("file://%s" % store_dir, name="b", opts=["freshness=0"])
    bodies = [(b"%02d" % i) * (40000 + 997 * i) for i in range(12)]
    with open(a.path("config.json"), "wb") as f:
        f.write(bodies[0])
    _, reads, bad = replace_while_reading([a, b], [a, b], bodies, 4)
    assert reads > 20
    assert bad == []
