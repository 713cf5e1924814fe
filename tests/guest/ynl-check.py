#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Compare a YNL spec with the family the running kernel registered, through the kernel's own
controller (nlctrl getfamily, getpolicy): version, multicast groups, every operation's flags and
every request attribute's policy (type, integer range, binary length, nested policy).

    ynl-check.py YNL_DIR SPEC      (YNL_DIR holds lib/; nlctrl.yaml sits beside SPEC)

Prints '# ' lines (what was compared, then each mismatch); exits 0 when they agree, 1 when not.
"""
import os
import sys

# Spec type -> how the policy dump names the kernel type, and its full range.
INT_RANGE = {'u8': (0, 0xff), 'u16': (0, 0xffff), 'u32': (0, 0xffffffff)}
DUMP_TYPE = {'u8': 'u8', 'u16': 'u16', 'u32': 'u32', 'uint': 'uint', 'binary': 'binary',
             'nest': 'nested', 'flag': 'flag', 'string': 'nul-string'}


def controller(nlctrl_path, YnlFamily):
    """The nlctrl family. 6.12's client cannot decode the alignment padding the kernel puts
    before 64-bit policy limits ('Unknown pad'): drop it from the spec and skip it as unknown."""
    import tempfile
    import yaml
    with open(nlctrl_path) as f:
        nlctrl = yaml.safe_load(f)
    for attr_set in nlctrl['attribute-sets']:
        attr_set['attributes'] = [a for a in attr_set['attributes'] if a.get('type') != 'pad']
    with tempfile.NamedTemporaryFile('w', suffix='.yaml', delete=False) as f:
        f.write('# SPDX-License-Identifier: ((GPL-2.0 WITH Linux-syscall-note) OR BSD-3-Clause)\n')
        yaml.safe_dump(nlctrl, f)
    try:
        schema = os.path.join(os.path.dirname(os.path.dirname(nlctrl_path)), f"{nlctrl['protocol']}.yaml")
        return YnlFamily(f.name, schema, process_unknown=True)
    finally:
        os.unlink(f.name)


def main():
    if len(sys.argv) != 3:
        print(__doc__.strip(), file=sys.stderr)
        sys.exit(2)
    ynl_dir, spec_path = sys.argv[1:]
    sys.path.insert(0, ynl_dir)
    from lib import SpecFamily, YnlFamily

    spec = SpecFamily(spec_path)
    ctrl = controller(os.path.join(os.path.dirname(spec_path), 'nlctrl.yaml'), YnlFamily)
    problems = []

    family = ctrl.do('getfamily', {'family-name': spec.name})
    family_id = family['family-id']
    want_version = spec.yaml.get('version', 1)
    if family.get('version') != want_version:
        problems.append(f"version: kernel {family.get('version')}, spec {want_version}")
    # Indexed arrays decode as [{index: value}, ...].
    def indexed(items):
        return [v for item in items for v in item.values()]

    kernel_groups = sorted(g['name'] for g in indexed(family.get('mcast-groups', [])))
    spec_groups = sorted(g['name'] for g in spec.yaml.get('mcast-groups', {}).get('list', []))
    if kernel_groups != spec_groups:
        problems.append(f"multicast groups: kernel {kernel_groups}, spec {spec_groups}")
    kernel_ops = {op['id']: set(op['flags']) - {'cmd-cap-haspol'} for op in indexed(family.get('ops', []))}

    records = ctrl.dump('getpolicy', {'family-name': spec.name})
    op_policy = {}  # cmd -> {'do': idx, 'dump': idx}
    policies = {}   # idx -> {attr: record}
    for r in records:
        if 'op-policy' in r:
            p = r['op-policy']
            op_policy[p['op-id']] = {k: v for k, v in p.items() if k in ('do', 'dump')}
        if 'policy' in r:
            p = r['policy']
            policies.setdefault(p['policy-id'], {})[p['attr-id']] = p

    def compare_policy(where, attr_set, names, idx):
        """The kernel policy `idx` must take exactly attributes `names` of `attr_set`."""
        kernel = policies.get(idx, {})
        wanted = {attr_set[name].value: attr_set[name] for name in names}
        for value in sorted(set(kernel) | set(wanted)):
            if value not in wanted:
                problems.append(f"{where}: kernel takes attribute {value}, the spec does not")
                continue
            attr = wanted[value]
            if value not in kernel:
                problems.append(f"{where}.{attr.name}: in the spec, not taken by the kernel")
                continue
            compare_attr(f"{where}.{attr.name}", attr, kernel[value])

    def compare_attr(where, attr, got):
        kind = attr['type']
        checks = attr.yaml.get('checks', {})
        if got.get('type') != DUMP_TYPE.get(kind, kind):
            problems.append(f"{where}: kernel type {got.get('type')}, spec {kind}")
            return
        if kind in INT_RANGE:
            low, high = INT_RANGE[kind]
            if 'enum' in attr.yaml and 'max' not in checks:
                high = len(spec.consts[attr.yaml['enum']].entries) - 1
            want = (checks.get('min', low), checks.get('max', high))
            have = (got.get('min-value-u'), got.get('max-value-u'))
            if have != want:
                problems.append(f"{where}: kernel range {have}, spec {want}")
        elif kind == 'binary':
            want = (checks.get('min-len'), checks.get('max-len', checks.get('exact-len')))
            have = (got.get('min-length'), got.get('max-length'))
            if have != want:
                problems.append(f"{where}: kernel length {have}, spec {want}")
        elif kind == 'nest':
            nested = spec.attr_sets[attr['nested-attributes']]
            compare_policy(where, nested, list(nested.attrs), got.get('policy-idx'))

    compared = 0
    for op in spec.msgs.values():
        if 'notify' in op.yaml or 'event' in op.yaml:
            continue
        compared += 1
        flags = kernel_ops.get(op.req_value)
        if flags is None:
            problems.append(f"{op.name}: no such operation ({op.req_value}) in the kernel")
            continue
        want = set(op.yaml.get('flags', []))
        want |= {'cmd-cap-do'} if 'do' in op.yaml else set()
        want |= {'cmd-cap-dump'} if 'dump' in op.yaml else set()
        if flags != want:
            problems.append(f"{op.name}: kernel flags {sorted(flags)}, spec {sorted(want)}")
        for mode in ('do', 'dump'):
            request = op.yaml.get(mode, {}).get('request', {}).get('attributes', [])
            idx = op_policy.get(op.req_value, {}).get(mode)
            if not request:
                # A policy refusing everything lists no attribute.
                if idx is not None and policies.get(idx):
                    problems.append(f"{op.name} {mode}: kernel takes {sorted(policies[idx])}, the spec nothing")
                continue
            if idx is None:
                problems.append(f"{op.name} {mode}: kernel has no request policy")
                continue
            compare_policy(f"{op.name} {mode}", op.attr_set, request, idx)
    extra = sorted(set(kernel_ops) - {op.req_value for op in spec.msgs.values()})
    if extra:
        problems.append(f"kernel operations not in the spec: {extra}")

    print(f"# {spec.name} (id {family_id}): {compared} operations, {len(policies)} policies, "
          f"groups {kernel_groups} compared with {spec_path}")
    for p in problems:
        print(f"# MISMATCH {p}")
    sys.exit(1 if problems else 0)


if __name__ == '__main__':
    main()
