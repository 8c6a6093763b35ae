"""Mount-test fixtures: start the real daemon on a real FUSE mount, wait for
it, and on teardown unmount cleanly and fail on unexpected stderr output."""
import json
import os
import re
import signal
import subprocess
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("FALLBACKFS_BUILD", os.path.join(ROOT, "build"))
BINARY = os.path.join(BUILD, "fallbackfs")

# Lines the daemon may print in normal operation.
EXPECTED = [r"^fallbackfs: mounted .* on .*", r"^fallbackfs: unmounted .*"]


def is_mounted(path):
    with open("/proc/self/mounts") as f:
        return any(line.split()[1] == path for line in f)


def wait_for(pred, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.02)
    raise AssertionError("timed out waiting for " + what)


class Mount:
    """One running daemon in the foreground (-f)."""

    def __init__(self, url, mnt, cache, opts=(), env=None, allowed=()):
        self.url, self.mnt, self.cache = url, str(mnt), str(cache)
        self.allowed = list(EXPECTED) + list(allowed)
        os.makedirs(self.mnt, exist_ok=True)
        o = ["cache_dir=" + self.cache] + list(opts)
        self.errpath = self.cache + ".stderr"
        self.errfile = open(self.errpath, "w+")
        self.proc = subprocess.Popen([BINARY, url, self.mnt, "-f", "-o", ",".join(o)],
                                     stdout=subprocess.DEVNULL, stderr=self.errfile,
                                     env=env)
        try:
            wait_for(lambda: is_mounted(self.mnt) or self.proc.poll() is not None,
                     what="mount of " + self.mnt)
        except AssertionError:
            self.proc.kill()
            raise
        if self.proc.poll() is not None:
            raise AssertionError("daemon exited %s: %s" % (self.proc.returncode, self.stderr()))

    def path(self, *parts):
        return os.path.join(self.mnt, *parts)

    def stderr(self):
        if not self.errfile.closed:
            self.errfile.flush()
        with open(self.errpath) as f:
            return f.read()

    def allow(self, pattern):
        self.allowed.append(pattern)

    def unmount(self):
        if is_mounted(self.mnt):
            subprocess.run(["fusermount3", "-u", self.mnt], check=True, timeout=30)
        self.proc.wait(timeout=30)
        assert self.proc.returncode == 0, "daemon exit status %s" % self.proc.returncode
        self.errfile.close()

    def unexpected_stderr(self):
        bad = []
        for line in self.stderr().splitlines():
            if not any(re.search(p, line) for p in self.allowed):
                bad.append(line)
        return bad


@pytest.fixture
def store_dir(tmp_path):
    d = tmp_path / "store"
    d.mkdir()
    return d


def unmount_all(mounts):
    """Teardown of the mount factories: unmount every mount, then fail on any that
    did not unmount cleanly or printed unexpected stderr."""
    problems = []
    for m in mounts:
        try:
            if m.proc.poll() is None or is_mounted(m.mnt):
                m.unmount()
        except Exception as e:  # keep unmounting the others
            problems.append("%s: %s" % (m.mnt, e))
            if m.proc.poll() is None:
                m.proc.send_signal(signal.SIGKILL)
            subprocess.run(["fusermount3", "-uz", m.mnt], timeout=30)
        bad = m.unexpected_stderr()
        if bad:
            problems.append("unexpected stderr from %s:\n  %s" % (m.mnt, "\n  ".join(bad)))
    assert not problems, "\n".join(problems)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def status(m):
    """The mount's .fallbackfs/status, parsed."""
    return json.loads(read(m.path(".fallbackfs", "status")))


def requests(m):
    """Store requests by kind, with the byte and not-modified counters."""
    st = status(m)
    return dict(st["store"]["requests"], not_modified=st["store"]["not_modified"],
                bytes_in=st["store"]["bytes_in"], read_bytes=st["fs"]["read_bytes"])


@pytest.fixture
def mounter(tmp_path):
    """Factory: mounter(url, name="m", opts=()) -> Mount; all unmounted at the end
    and checked for unexpected stderr."""
    mounts = []

    def make(url, name="m", opts=(), env=None, allowed=()):
        m = Mount(url, tmp_path / name, tmp_path / (name + "-cache"), opts, env, allowed)
        mounts.append(m)
        return m

    yield make
    unmount_all(mounts)


@pytest.fixture
def mount(mounter, store_dir):
    """A default read-write mount of a fresh file:// store."""
    return mounter("file://%s" % store_dir)
