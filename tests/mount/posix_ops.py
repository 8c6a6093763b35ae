"""The same POSIX operations, applied to any path: mount tests compare a file on
the mount with one on a local disk."""
import os


def apply_ops(path, ops):
    """Run the same POSIX operations on any path."""
    for op in ops:
        kind = op[0]
        if kind == "write":
            with open(path, "wb") as f:
                f.write(op[1])
        elif kind == "append":
            with open(path, "ab") as f:
                f.write(op[1])
        elif kind == "pwrite":
            fd = os.open(path, os.O_WRONLY)
            os.pwrite(fd, op[1], op[2])
            os.close(fd)
        elif kind == "rw":
            with open(path, "r+b") as f:
                f.seek(op[2])
                f.write(op[1])
                f.seek(0)
                assert f.read()  # reads its own staged data
        elif kind == "truncate":
            os.truncate(path, op[1])
        elif kind == "ftruncate":
            fd = os.open(path, os.O_RDWR)
            os.ftruncate(fd, op[1])
            os.close(fd)
        elif kind == "otrunc":
            os.close(os.open(path, os.O_WRONLY | os.O_TRUNC))
