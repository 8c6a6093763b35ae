#!/usr/bin/python3
"""bench_s3.py - the S3 store against curl, side by side, on one Ceph RGW.

    /usr/bin/python3 tools/bench_s3.py [--rgw-dir DIR] [--keep]

Starts (or reuses) a loopback RGW with tests/servers/rgw.sh, mounts s3://bucket/bench-<rand>
with fallbackfs (freshness=0, so every open revalidates), and prints:
  - open+read+close of an unchanged 2 KB and 1 MB config.json through the mount vs curl doing
    the conditional GET itself (--aws-sigv4, If-None-Match: "etag" -> 304), median of N;
  - write+close of 1 MB and 30 MB through the mount vs a curl PUT of the same bytes (curl -T
    reading the same source file);
  - cold reads of 30 MB objects (median of 7) through the mount vs a curl GET into a file
    (the mount too writes every body it fetches to a file: its cache);
  - the daemon's peak RSS (VmHWM) while a 200 MB file is written and read back.
Targets (issue 4): revalidating read <= 1.5x curl; big transfers >= 90% of curl's
throughput; RSS < 30 MB. Exit status 0 whatever the numbers: this measures, it does not judge.
"""
import argparse
import hashlib
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "servers"))
import servers  # noqa: E402

DAEMON = os.path.join(os.environ.get("FALLBACKFS_BUILD", os.path.join(ROOT, "build")),
                      "fallbackfs")


def mounted(path):
    with open("/proc/self/mounts") as f:
        return any(line.split()[1] == path for line in f)


def cpu_ms(pids):
    """CPU time (user + system, all threads) the processes have used so far, in ms."""
    total = 0
    for pid in pids:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total * 1000.0 / os.sysconf("SC_CLK_TCK")


def own_cpu_ms(who):
    r = resource.getrusage(who)
    return (r.ru_utime + r.ru_stime) * 1000.0


def server_pids(rgw_dir):
    run = os.path.join(rgw_dir, "run")
    return [int(open(os.path.join(run, f)).read()) for f in os.listdir(run)
            if f.endswith(".pid")]


def hwm_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


class Curl:
    def __init__(self, env):
        self.env = env
        self.base = "%s/%s" % (env["S3_ENDPOINT"], env["S3_BUCKET"])
        self.user = "%s:%s" % (env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"])
        self.sig = "aws:amz:%s:s3" % env["AWS_REGION"]

    def cond_get(self, key, etag):
        """Conditional GET; returns the HTTP status."""
        p = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{time_total}",
                            "--user", self.user, "--aws-sigv4", self.sig,
                            "-H", "x-amz-content-sha256: " + hashlib.sha256(b"").hexdigest(),
                            "-H", 'If-None-Match: "%s"' % etag, "%s/%s" % (self.base, key)],
                           capture_output=True, text=True, check=True)
        code, took = p.stdout.split()
        self.last = float(took)  # curl's own request time, without process start-up
        return int(code)

    def get(self, key, out):
        """GET into the file out: the mount stores every body it fetches in its cache
        file, so curl writing to /dev/null would not be the same work."""
        p = subprocess.run(["curl", "-s", "-o", out, "-w", "%{http_code} %{time_total}",
                            "--user", self.user, "--aws-sigv4", self.sig,
                            "-H", "x-amz-content-sha256: " + hashlib.sha256(b"").hexdigest(),
                            "%s/%s" % (self.base, key)],
                           capture_output=True, text=True, check=True)
        code, took = p.stdout.split()
        self.last = float(took)  # curl's own request time, without process start-up
        return int(code)

    def put(self, key, path):
        p = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{time_total}",
                            "--user", self.user, "--aws-sigv4", self.sig,
                            "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD",
                            "-T", path, "%s/%s" % (self.base, key)],
                           capture_output=True, text=True, check=True)
        code, took = p.stdout.split()
        self.last = float(took)  # curl's own request time, without process start-up
        return int(code)


def timed(fn, n, curl=None):
    """Median wall time of fn, or of curl's own time_total when curl is given."""
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append(curl.last if curl else time.perf_counter() - t0)
    return statistics.median(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rgw-dir", default="/tmp/fallbackfs-bench-rgw")
    ap.add_argument("--keep", action="store_true", help="leave RGW running")
    ap.add_argument("-n", type=int, default=30, help="repetitions of the small cases")
    args = ap.parse_args()

    env = servers.start_rgw(args.rgw_dir)
    work = tempfile.mkdtemp(prefix="fallbackfs-bench-")
    mnt, cache = os.path.join(work, "mnt"), os.path.join(work, "cache")
    os.makedirs(mnt)
    pfx = "bench-" + uuid.uuid4().hex[:8]
    denv = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    denv.update(AWS_CONFIG_STORAGE_ENDPOINT=env["S3_ENDPOINT"], AWS_REGION=env["AWS_REGION"],
                AWS_ACCESS_KEY_ID=env["AWS_ACCESS_KEY_ID"], AWS_EC2_METADATA_DISABLED="true",
                AWS_SECRET_ACCESS_KEY=env["AWS_SECRET_ACCESS_KEY"])
    daemon = subprocess.Popen([DAEMON, "s3://%s/%s" % (env["S3_BUCKET"], pfx), mnt, "-f",
                               "-o", "cache_dir=%s,freshness=0" % cache],
                              env=denv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    curl = Curl(env)
    rows = []
    cpu = {}
    try:
        deadline = time.monotonic() + 20
        while not mounted(mnt):
            if daemon.poll() is not None or time.monotonic() > deadline:
                sys.exit("mount failed: %s" % daemon.stderr.read().decode())
            time.sleep(0.05)
        os.makedirs(os.path.join(mnt, "3.6.0.0"))

        # revalidating reads of an unchanged config.json
        for label, size in (("2 KB", 2048), ("1 MB", 1 << 20)):
            name = "config-%d.json" % size
            path = os.path.join(mnt, "3.6.0.0", name)
            with open(path, "wb") as f:
                f.write(os.urandom(size))
            with open(path, "rb") as f:  # warm the cache
                f.read()
            st, h, _ = servers.s3_request(env, "HEAD", "%s/3.6.0.0/%s" % (pfx, name))
            etag = h["etag"].strip('"')
            key = "%s/3.6.0.0/%s" % (pfx, name)
            assert curl.cond_get(key, etag) == 304

            def mount_read():
                with open(path, "rb") as f:
                    while f.read(1 << 20):
                        pass
            t_m = timed(mount_read, args.n)
            t_c = timed(lambda: curl.cond_get(key, etag), args.n, curl)
            rows.append(("open+read+close %s (unchanged)" % label, t_m, t_c, t_m / t_c,
                          "<= 1.5"))

        # writes
        for label, size, n in (("1 MB", 1 << 20, max(5, args.n // 3)), ("30 MB", 30 << 20, 5)):
            src = os.path.join(work, "src-%d" % size)
            with open(src, "wb") as f:
                f.write(os.urandom(size))
            path = os.path.join(mnt, "3.6.0.0", "w-%d.bin" % size)

            def mount_write():
                with open(src, "rb") as s, open(path, "wb") as d:
                    shutil.copyfileobj(s, d, 1 << 20)
            key = "%s/3.6.0.0/c-%d.bin" % (pfx, size)
            srv = server_pids(args.rgw_dir)
            c0 = (cpu_ms([daemon.pid]), cpu_ms(srv), own_cpu_ms(resource.RUSAGE_SELF))
            t_m = timed(mount_write, n)
            c1 = (cpu_ms([daemon.pid]), cpu_ms(srv), own_cpu_ms(resource.RUSAGE_CHILDREN))
            t_c = timed(lambda: curl.put(key, src), n, curl)
            c2 = (cpu_ms(srv), own_cpu_ms(resource.RUSAGE_CHILDREN))
            # what each side costs the machine: daemon + server + the writing process,
            # against curl + the same server
            cpu[label] = ((c1[0] - c0[0]) / n, (c1[1] - c0[1]) / n,
                          (own_cpu_ms(resource.RUSAGE_SELF) - c0[2]) / n,
                          (c2[1] - c1[2]) / n, (c2[0] - c1[1]) / n, t_c)
            rows.append(("write+close %s" % label, t_m, t_c, t_c / t_m,
                         ">= 0.9 (throughput)" if size > (1 << 20) else "(ratio of speed)"))

        # big cold reads: objects the mount has never seen (written by curl) vs curl GET
        src = os.path.join(work, "src-%d" % (30 << 20))
        t_ms, t_cs = [], []
        for i in range(7):
            key = "%s/3.6.0.0/cold-%d.bin" % (pfx, i)
            assert curl.put(key, src) == 200
            t0 = time.perf_counter()
            with open(os.path.join(mnt, "3.6.0.0", "cold-%d.bin" % i), "rb") as f:
                while f.read(1 << 20):
                    pass
            t_ms.append(time.perf_counter() - t0)
            t_cs.append(timed(lambda: curl.get(key, os.path.join(work, "curl-get.bin")), 1,
                              curl))
        t_m, t_c = statistics.median(t_ms), statistics.median(t_cs)
        rows.append(("cold read 30 MB", t_m, t_c, t_c / t_m, ">= 0.9 (throughput)"))

        # peak RSS around a 200 MB write and read
        big = os.path.join(work, "src-200m")
        with open(big, "wb") as f:
            for _ in range(200):
                f.write(os.urandom(1 << 20))
        path = os.path.join(mnt, "3.6.0.0", "big.bin")
        t0 = time.perf_counter()
        with open(big, "rb") as s, open(path, "wb") as d:
            shutil.copyfileobj(s, d, 1 << 20)
        t_w = time.perf_counter() - t0
        t0 = time.perf_counter()
        h = hashlib.sha256()
        with open(path, "rb") as f:
            while True:
                b = f.read(1 << 20)
                if not b:
                    break
                h.update(b)
        t_r = time.perf_counter() - t0
        with open(big, "rb") as f:
            same = hashlib.sha256(f.read()).hexdigest() == h.hexdigest()
        rss = hwm_kb(daemon.pid)
    finally:
        if mounted(mnt):
            subprocess.run(["fusermount3", "-u", mnt], check=False)
        try:
            daemon.wait(30)
        except subprocess.TimeoutExpired:
            daemon.kill()
        shutil.rmtree(work, ignore_errors=True)
        if not args.keep:
            servers.stop_rgw(args.rgw_dir)

    print("%-38s %12s %12s %8s  %s" % ("case (median)", "mount ms", "curl ms", "ratio",
                                        "target"))
    for name, t_m, t_c, ratio, target in rows:
        print("%-38s %12.2f %12.2f %8.2f  %s" % (name, t_m * 1e3, t_c * 1e3, ratio, target))
    print("200 MB write %.2f s (%.0f MB/s), read %.2f s (%.0f MB/s), identical: %s"
          % (t_w, 200 / t_w, t_r, 200 / t_r, same))
    print("daemon peak RSS (VmHWM): %.1f MB (target < 30 MB)" % (rss / 1024))
    ncpu = os.cpu_count()
    for label, (d, srv_m, w, c, srv_c, t_c) in cpu.items():
        mount_total, curl_total = d + srv_m + w, c + srv_c
        print("CPU per write+close %s (ms, mean): mount path %.0f = daemon %.0f + server %.0f "
              "+ writer %.0f; curl path %.0f = curl %.0f + server %.0f" %
              (label, mount_total, d, srv_m, w, curl_total, c, srv_c))
        print("  on %d cores the mount path needs >= %.0f ms of wall time: at most %.2f of "
              "curl's throughput on this machine" %
              (ncpu, mount_total / ncpu, t_c * 1e3 / (mount_total / ncpu)))
    print("curl times are its own %{time_total} (no process start-up); mount times are "
          "wall clock of the syscalls")
    print("read ratio = mount time / curl time; write ratio = curl time / mount time "
          "(share of curl's throughput)")


if __name__ == "__main__":
    main()
