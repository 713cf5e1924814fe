# The ipvs_gue generic netlink family, driven by the kernel's own YNL client with the repo's spec
# (sourced by tests/guest/smoke.sh after insmod; tests/smoke.sh ships /ynl).  The spec and the
# family the kernel registered are compared first; then every operation, every refusal (with its
# errno, extack message and the attribute it names), permissions, namespaces and notifications.
YNL_DIR=/ynl
YNL_SPEC=$YNL_DIR/specs/ipvs_gue.yaml

# ynl NS ARGS...: the client in namespace NS ('-': the initial one), JSON output; the error text
# on stdout when it fails.
ynl() {
  local ns=$1; shift
  if [ "$ns" = - ]; then set -- python3 "$YNL_DIR/cli.py" --spec "$YNL_SPEC" --output-json "$@"
  else set -- nsx "$ns" python3 "$YNL_DIR/cli.py" --spec "$YNL_SPEC" --output-json "$@"; fi
  "$@" 2>&1
}
# nl_do NS ARGS...: the operation succeeds (its output, if it fails, as diagnostics).
nl_do() {
  local out
  out=$(ynl "$@") && return 0
  printf '%s\n' "$out" | head -n 5 | sed 's/^/# /'
  return 1
}
# Addresses as the client takes binary attributes: hex.
NL_A1=0a080001 NL_A2=0a080002 NL_A9=0a080009 NL_B1=fd080000000000000000000000000001

# nl_json NS FILTER ARGS...: the operation succeeds and jq -e FILTER holds on its output.
nl_json() {
  local ns=$1 filter=$2 out; shift 2
  out=$(ynl "$ns" "$@") || { printf '%s\n' "$out" | head -n 5 | sed 's/^/# /'; return 1; }
  printf '%s\n' "$out" | jq -e "$filter" >/dev/null || { echo "# got: $out"; return 1; }
}

# nl_refuse NAME ERRNO_TEXT MESSAGE WHERE ARGS...: the operation fails with that errno text, the
# extack message contains MESSAGE, the error names WHERE ('bad-attr': '.x' or 'miss-type': 'x';
# '-' for neither), and the table is unchanged (same generation).
nl_refuse() {
  local name=$1 errno=$2 message=$3 where=$4 before after out; shift 4
  before=$(ynl nltest --do table-get | jq -c .)
  if out=$(ynl nltest "$@"); then tap_fail "netlink: $name is refused (it succeeded)"; return; fi
  after=$(ynl nltest --do table-get | jq -c .)
  case "$out" in *"Netlink error: $errno"*) ;; *) tap_fail "netlink: $name → $errno (got: $(echo "$out" | head -n 3))"; return ;; esac
  case "$out" in *"'msg': '$message"*) ;; *) tap_fail "netlink: $name says '$message' (got: $(echo "$out" | grep extack))"; return ;; esac
  case "$where" in
    -) ;;
    .*) case "$out" in *"'bad-attr': '$where'"*) ;; *) tap_fail "netlink: $name points at $where (got: $(echo "$out" | grep extack))"; return ;; esac ;;
    *) case "$out" in *"'miss-type': '$where'"*) ;; *) tap_fail "netlink: $name names missing $where (got: $(echo "$out" | grep extack))"; return ;; esac ;;
  esac
  [ "$before" = "$after" ] || { tap_fail "netlink: $name leaves the table unchanged ($before -> $after)"; return; }
  tap_ok "netlink: $name → $errno, '$message'$([ "$where" = - ] || echo " at $where"), table unchanged"
}

# quietly CMD...: CMD succeeds; its output is not wanted.
quietly() { "$@" >/dev/null 2>&1; }
# The addresses the dump lists in NS, sorted, one line.
nl_dumped() { ynl "$1" --dump server-get | jq -r '.[].address' | sort | tr '\n' ' '; }
# The addresses the proc listing shows in NS, sorted, one line.
nl_proc_listed() { nsx "$1" grep -v '^#' /proc/net/ipvs_gue | cut -d' ' -f1 | sort | tr '\n' ' '; }

# replace_json N: a table-replace request of N IPv4 servers 10.8.1.1...
replace_json() {
  python3 -c 'import json, sys; n = int(sys.argv[1]); print(json.dumps({"server": [{"address": "0a08%02x%02x" % (1 + i // 250, 1 + i % 250), "port": 6000 + i} for i in range(n)]}))' "$1"
}

netlink_checks() {
  local out gen
  $IP netns add nltest
  if ! [ -f "$YNL_DIR/cli.py" ] || ! python3 -c 'import yaml, jsonschema' 2>/dev/null; then
    tap_fail "netlink: the YNL client runs in the guest (python3, yaml, jsonschema, $YNL_DIR/cli.py)"
    return
  fi
  out=$(nsx nltest python3 /guest/ynl-check.py "$YNL_DIR" "$YNL_SPEC" 2>&1) \
    && tap_ok "netlink: the kernel's family matches spec/ipvs_gue.yaml (nlctrl getfamily, getpolicy)" \
    || tap_fail "netlink: the kernel's family matches spec/ipvs_gue.yaml (nlctrl getfamily, getpolicy)"
  printf '%s\n' "$out" | grep '^#' | head -n 20

  tap_check "netlink: table-get in a new namespace: empty, generation 1" \
    nl_json nltest '.count == 0 and .generation == 1 and .capacity > 0' --do table-get
  tap_check "netlink: server-add IPv4 (port only)" \
    nl_do nltest --do server-add --json "{\"address\": \"$NL_A1\", \"port\": 5501}"
  tap_check "netlink: server-add IPv6 with csum and an IPv4 outer address" \
    nl_do nltest --do server-add --json "{\"address\": \"$NL_B1\", \"port\": 6080, \"csum\": \"remcsum\", \"outer\": \"$NL_A9\"}"
  tap_check "netlink: server-get shows fd08::1 → 10.8.0.9:6080 remcsum, zero counters" \
    nl_json nltest '.address == "fd08::1" and .port == 6080 and .csum == "remcsum" and .outer == "10.8.0.9" and .stats.packets == 0 and .stats["drop-pmtu"] == 0' \
    --do server-get --json "{\"address\": \"$NL_B1\"}"
  tap_check "netlink: defaults: csum none, outer = the address, flowlabel zero" \
    nl_json nltest '.csum == "none" and .outer == "10.8.0.1" and .flowlabel == "zero"' --do server-get --json "{\"address\": \"$NL_A1\"}"
  tap_check "netlink: the dump lists both ('$(nl_dumped nltest)')" [ "$(nl_dumped nltest)" = "10.8.0.1 fd08::1 " ]
  tap_check "netlink: /proc/net/ipvs_gue lists what the dump lists" [ "$(nl_proc_listed nltest)" = "$(nl_dumped nltest)" ]
  gen=$(ynl nltest --do table-get | jq .generation)
  tap_check "netlink: two adds made two generations (1 -> $gen)" [ "$gen" = 3 ]

  nl_refuse "a 5-byte address" "Invalid argument" "address must be 4 (IPv4) or 16 (IPv6) bytes" .address \
    --do server-add --json '{"address": "0a08000101", "port": 1}'
  nl_refuse "a 3-byte address (policy)" "Numerical result out of range" "binary attribute size out of range" .address \
    --do server-add --json '{"address": "0a0800", "port": 1}'
  nl_refuse "port 0 (policy)" "Numerical result out of range" "integer out of range" .port \
    --do server-add --json "{\"address\": \"$NL_A2\", \"port\": 0}"
  nl_refuse "checksum mode 3 (policy)" "Numerical result out of range" "integer out of range" .csum \
    --do server-add --json "{\"address\": \"$NL_A2\", \"port\": 1, \"csum\": 3}"
  nl_refuse "flow label mode 2 (policy)" "Numerical result out of range" "integer out of range" .flowlabel \
    --do server-edit --json "{\"address\": \"$NL_A1\", \"flowlabel\": 2}"
  nl_refuse "server-add without a port" "Invalid argument" "missing port" port \
    --do server-add --json "{\"address\": \"$NL_A2\"}"
  nl_refuse "server-add without an address" "Invalid argument" "missing real server address" address \
    --do server-add --json '{"port": 1}'
  nl_refuse "counters in a request (policy)" "Invalid argument" "Unsupported attribute" .stats \
    --do server-add --json "{\"address\": \"$NL_A2\", \"port\": 1, \"stats\": {\"packets\": 1}}"
  nl_refuse "a second add of 10.8.0.1" "File exists" "real server 10.8.0.1 already exists" .address \
    --do server-add --json "{\"address\": \"$NL_A1\", \"port\": 1}"
  nl_refuse "server-del of a server not listed" "No such file or directory" "real server 10.8.0.2 does not exist" .address \
    --do server-del --json "{\"address\": \"$NL_A2\"}"
  nl_refuse "server-get of a server not listed" "No such file or directory" "real server 10.8.0.2 does not exist" .address \
    --do server-get --json "{\"address\": \"$NL_A2\"}"
  nl_refuse "server-edit with nothing to change" "Invalid argument" "nothing to edit" - \
    --do server-edit --json "{\"address\": \"$NL_A1\"}"
  nl_refuse "table-flush carrying an attribute (it takes none)" "Invalid argument" "Unknown attribute type" .count \
    --do table-flush --json '{"count": 0}'
  nl_refuse "a table-replace server without a port" "Invalid argument" "missing port" - \
    --do table-replace --json "{\"server\": [{\"address\": \"$NL_A2\"}]}"

  tap_check "netlink: server-edit csum udp" nl_do nltest --do server-edit --json "{\"address\": \"$NL_A1\", \"csum\": \"udp\"}"
  tap_check "netlink: the edit changed only the checksum mode" \
    nl_json nltest '.csum == "udp" and .port == 5501 and .outer == "10.8.0.1" and .flowlabel == "zero"' --do server-get --json "{\"address\": \"$NL_A1\"}"
  tap_check "netlink: server-edit flowlabel hash" nl_do nltest --do server-edit --json "{\"address\": \"$NL_B1\", \"flowlabel\": \"hash\"}"
  tap_check "netlink: the edit changed only the flow label mode" \
    nl_json nltest '.flowlabel == "hash" and .csum == "remcsum" and .port == 6080' --do server-get --json "{\"address\": \"$NL_B1\"}"
  tap_check "netlink: /proc/net/ipvs_gue's last column shows it" \
    [ "$(nsx nltest awk '$1 == "fd08::1" { print $NF }' /proc/net/ipvs_gue)" = hash ]

  # Permissions: changes need CAP_NET_ADMIN over the namespace's user namespace.
  out=$(nsx nltest unshare -U -r python3 "$YNL_DIR/cli.py" --spec "$YNL_SPEC" --do table-flush 2>&1) \
    && tap_fail "netlink: table-flush without CAP_NET_ADMIN over the namespace is refused" \
    || case "$out" in *"Operation not permitted"*) tap_ok "netlink: table-flush without CAP_NET_ADMIN over the namespace → EPERM" ;;
         *) tap_fail "netlink: table-flush without CAP_NET_ADMIN → EPERM (got: $(echo "$out" | head -n 2))" ;; esac
  tap_check "netlink: reading needs no privilege (table-get in a user namespace)" \
    quietly nsx nltest unshare -U -r python3 "$YNL_DIR/cli.py" --spec "$YNL_SPEC" --do table-get
  out=$(unshare -U -r -n sh -c "python3 $YNL_DIR/cli.py --spec $YNL_SPEC --do server-add --json '{\"address\": \"$NL_A2\", \"port\": 7}' && python3 $YNL_DIR/cli.py --spec $YNL_SPEC --output-json --dump server-get" 2>&1)
  case "$out" in
    *'"address": "10.8.0.2"'*) case "$out" in *10.8.0.1*) tap_fail "netlink: a user-owned namespace sees only its own table ($out)" ;;
                                 *) tap_ok "netlink: root of a user-owned namespace configures its own table (uns-admin-perm), sees only it" ;; esac ;;
    *) tap_fail "netlink: root of a user-owned namespace configures its own table (got: $(echo "$out" | head -n 3))" ;;
  esac
  tap_check "netlink: the namespaces' tables are separate (the initial namespace lists none of nltest's)" \
    nl_json - 'all(.[]; .address | startswith("10.8.") | not)' --dump server-get

  # Notifications: a listener subscribed to 'config' sees every change, up to the flush below.
  nsx nltest python3 /guest/ynl-listen.py "$YNL_DIR" "$YNL_SPEC" config 5 300 > /tmp/nl-ntf.out 2>&1 &
  local listener=$! i
  for i in $(seq 100); do grep -q subscribed /tmp/nl-ntf.out && break; sleep 0.3; done
  nl_do nltest --do server-add --json "{\"address\": \"$NL_A2\", \"port\": 5502}"
  nl_do nltest --do server-del --json "{\"address\": \"$NL_A2\"}"

  # table-replace: all or nothing; servers listed before keep their place.
  nl_refuse "table-replace listing 10.8.0.1 twice" "File exists" "server 2: 10.8.0.1 listed twice" .server \
    --do table-replace --json "{\"server\": [{\"address\": \"$NL_A1\", \"port\": 1}, {\"address\": \"$NL_A1\", \"port\": 2}]}"
  nl_refuse "table-replace with a bad address in server 2" "Invalid argument" "address must be 4" .server.address \
    --do table-replace --json "{\"server\": [{\"address\": \"$NL_A2\", \"port\": 1}, {\"address\": \"0a08000101\", \"port\": 2}]}"
  # ENOSPC needs over 1048576 servers, more than one request can carry: the figure alone is checked.
  tap_check "netlink: table-get reports the capacity, 1048576 servers" \
    nl_json nltest '.capacity == 1048576' --do table-get
  tap_check "netlink: table-replace with 10.8.0.1 and 10.8.0.2 (count 2 in the reply)" \
    nl_json nltest '.count == 2' --do table-replace --json "{\"server\": [{\"address\": \"$NL_A1\", \"port\": 5501, \"csum\": \"udp\"}, {\"address\": \"$NL_A2\", \"port\": 5502}]}"
  tap_check "netlink: after the replacement the dump lists exactly 10.8.0.1 10.8.0.2" [ "$(nl_dumped nltest)" = "10.8.0.1 10.8.0.2 " ]
  # More than a new table's 64 slots: the replacement grows it.
  tap_check "netlink: table-replace with 100 servers (count 100 in the reply)" \
    nl_json nltest '.count == 100' --do table-replace --json "$(replace_json 100)"
  tap_check "netlink: the dump lists the 100 servers" \
    [ "$(ynl nltest --dump server-get | jq length)" = 100 ]
  tap_check "netlink: table-flush empties it" nl_json nltest '.count == 0' --do table-flush
  tap_check "netlink: the dump of an empty table is empty" [ -z "$(nl_dumped nltest)" ]

  # Seen, in order: the add and the delete, then one table change per successful replacement
  # and the flush (refused requests announce nothing).
  wait "$listener"
  out=$(tail -n 1 /tmp/nl-ntf.out | jq -r '[.[].name] | join(",")' 2>/dev/null)
  tap_check "netlink: the 'config' group announced exactly the changes made ($out)" \
    [ "$out" = "server-change-ntf,server-del-ntf,table-change-ntf,table-change-ntf,table-change-ntf" ]
  $IP netns del nltest
}
