#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Listen to a YNL family's multicast group until COUNT notifications arrived, then print them.

    ynl-listen.py YNL_DIR SPEC GROUP COUNT TIMEOUT_S

Prints 'subscribed' (flushed) once listening; then, once COUNT notifications arrived (and one
more second passed, to catch any beyond them) or TIMEOUT_S passed, the notifications received as
one JSON list ([{"name": ..., "msg": ...}]). Exits 1 on timeout. (The kernel's cli.py reads
notifications only after a fixed sleep.)
"""
import json
import sys
import time


def main():
    if len(sys.argv) != 6:
        print(__doc__.strip(), file=sys.stderr)
        sys.exit(2)
    ynl_dir, spec, group, count, timeout = sys.argv[1:]
    sys.path.insert(0, ynl_dir)
    from lib import YnlFamily

    ynl = YnlFamily(spec)
    ynl.ntf_subscribe(group)
    print('subscribed', flush=True)
    deadline = time.monotonic() + float(timeout)
    while len(ynl.async_msg_queue) < int(count) and time.monotonic() < deadline:
        time.sleep(0.2)
        ynl.check_ntf()
    complete = len(ynl.async_msg_queue) >= int(count)
    if complete:
        time.sleep(1)
        ynl.check_ntf()
    print(json.dumps(ynl.async_msg_queue, default=repr))
    sys.exit(0 if complete else 1)


if __name__ == '__main__':
    main()
