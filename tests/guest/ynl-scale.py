#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Replace and list an ipvs_gue table through the kernel's YNL library (tests/guest/e2e.sh).

    ynl-scale.py YNL_DIR SPEC replace COUNT FIRST [KEEP_JSON]
    ynl-scale.py YNL_DIR SPEC list

replace: one table-replace request of COUNT IPv4 servers 10.128.0.0 + FIRST + i (port 6080,
  outer address = the server's), plus KEEP_JSON (one server as the spec names its attributes,
  e.g. {"address": "0a020002", "port": 5555, "outer": "0a020002"}), so the server traffic is
  using stays listed. Prints one JSON object: servers, bytes (the request), encode_s (building
  it, in Python), kernel_s (from sending it to the kernel's answer: the module's whole work plus
  one netlink round trip), and the table's generation and count after.
list: dumps server-get; prints {"listed": N, "seconds": S}.

Exits 1 with the kernel's extack message if the kernel refuses. The request is built and sent
with the library's own message encoder (6.12's tools/net/ynl/lib), so that the time measured is
the kernel's, not Python's.
"""
import json
import socket
import sys
import time


def servers(count, first):
    for i in range(first, first + count):
        address = bytes([10, 128 + (i >> 16), (i >> 8) & 0xff, i & 0xff])
        yield {'address': address, 'port': 6080, 'outer': address}


def replace(ynl, lib, count, first, keep):
    wanted = list(servers(count, first)) + ([keep] if keep else [])
    started = time.monotonic()
    op = ynl.ops['table-replace']
    request = ynl._encode_message(op, {'server': wanted}, None, 4242)
    encoded = time.monotonic()
    # The request is megabytes: more than a socket may send by default (net.core.wmem_max).
    ynl.sock.setsockopt(socket.SOL_SOCKET, 32, 2 * len(request))  # SO_SNDBUFFORCE
    ynl.sock.send(request, 0)
    # The kernel's first answer is the reply (sent once the new table is published) or the
    # error; the acknowledgement follows the reply.
    answered = None
    done = False
    while not done:
        for message in lib.NlMsgs(ynl.sock.recv(65536), attr_space=op.attr_set):
            answered = answered or time.monotonic()
            if message.error:
                print(f'table-replace refused: errno {-message.error}: {message.extack}', file=sys.stderr)
                sys.exit(1)
            done = done or message.done
    table = ynl.do('table-get', {})
    return {'servers': len(wanted), 'bytes': len(request), 'encode_s': round(encoded - started, 3),
            'kernel_s': round(answered - encoded, 3), 'generation': table['generation'],
            'count': table['count']}


def main():
    if len(sys.argv) < 4 or sys.argv[3] not in ('replace', 'list'):
        print(__doc__.strip(), file=sys.stderr)
        sys.exit(2)
    ynl_dir, spec, command = sys.argv[1:4]
    sys.path.insert(0, ynl_dir)
    from lib import YnlFamily
    import lib.ynl as lib

    ynl = YnlFamily(spec)
    if command == 'replace':
        if len(sys.argv) not in (6, 7):
            print(__doc__.strip(), file=sys.stderr)
            sys.exit(2)
        keep = json.loads(sys.argv[6]) if len(sys.argv) == 7 else None
        result = replace(ynl, lib, int(sys.argv[4]), int(sys.argv[5]), keep)
    else:
        started = time.monotonic()
        listed = ynl.dump('server-get', {})
        result = {'listed': len(listed), 'seconds': round(time.monotonic() - started, 3)}
    print(json.dumps(result))


if __name__ == '__main__':
    main()
