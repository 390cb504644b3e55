"""What the peers share."""
import os


def write_port_file(path, port):
    """Write ``port`` to ``path`` atomically (tmp file + rename)."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % port)
    os.replace(tmp, path)
