"""Writers on some mounts replace one file while readers on others checksum
every read: the workload behind every "never partial, never mixed" test."""
import hashlib
import threading
import time


def replace_while_reading(writers, readers, bodies, seconds, name="config.json"):
    """Writers take turns through bodies (writer k starts at body k); each
    reader (a mount, listed once per reader thread) reads name whole, over and
    over. Returns (writes, reads, bad), bad being the sizes of reads that were
    not exactly one of bodies."""
    known = {hashlib.sha256(b).hexdigest() for b in bodies}
    stop = threading.Event()
    bad, reads, writes = [], [0], [0]

    def writer(m, i):
        while not stop.is_set():
            with open(m.path(name), "wb") as f:
                f.write(bodies[i % len(bodies)])
            writes[0] += 1
            i += len(writers)

    def reader(m):
        while not stop.is_set():
            with open(m.path(name), "rb") as f:
                data = f.read()
            reads[0] += 1
            if hashlib.sha256(data).hexdigest() not in known:
                bad.append(len(data))

    threads = [threading.Thread(target=writer, args=(m, k)) for k, m in enumerate(writers)]
    threads += [threading.Thread(target=reader, args=(m,)) for m in readers]
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join(timeout=120)
    return writes[0], reads[0], bad
