"""The report's "Host" section: which machine measured the latencies, from each bench.json.

bench.json's `host` is `{"cpu_model", "arch", "isa", "cores", "os", "python", "runtimes",
"threads"}` (targets/host.py); older files hold a plain string or nothing, and still report.
Two hosts are the same machine for latency purposes when cpu_model and the int8 ISA flags match.
"""

from __future__ import annotations

FIELDS = ("cpu_model", "arch", "isa", "cores", "os", "python")


def _identity(host) -> tuple | str:
    if isinstance(host, dict):
        return (host.get("cpu_model"), tuple(sorted(host.get("isa") or [])))
    return host


def same_host(a, b) -> bool:
    """True when two hosts are the same machine for latency purposes (CPU model and int8 ISA)."""
    return _identity(a) == _identity(b)


def describe_host(host) -> str:
    """One phrase for a host dict, an older plain-string host, or None."""
    if isinstance(host, str):
        return host
    if not isinstance(host, dict) or not (host.get("cpu_model") or host.get("description")):
        return "an unrecorded host"
    if not host.get("cpu_model"):
        return str(host["description"])
    isa = ", ".join(host.get("isa") or []) or "none found"
    return (f"{host['cpu_model']} ({host.get('arch') or '?'}, {host.get('cores') or '?'} cores; "
            f"int8 ISA: {isa})")


def host_summary(benches: list[tuple[str, dict]]) -> tuple[dict | None, list[str]]:
    """(the report's `host`, notes) from (target, bench.json) pairs; host None when no bench
    records one. The first host is reported; a note says so when artifacts used several."""
    hosts = [(target, bench.get("host")) for target, bench in benches if bench.get("host")]
    if not hosts:
        return None, []
    first = hosts[0][1]
    summary = {key: first.get(key) if isinstance(first, dict) else None for key in FIELDS}
    summary["description"] = describe_host(first)
    runtimes: dict[str, str] = {}
    for _, host in hosts:
        if isinstance(host, dict):
            runtimes.update({str(k): str(v) for k, v in (host.get("runtimes") or {}).items()})
    summary["runtimes"] = runtimes
    summary["threads"] = {target: _threads(bench) for target, bench in benches}
    groups: dict = {}
    for target, host in hosts:
        groups.setdefault(_identity(host), (describe_host(host), []))[1].append(target)
    notes = []
    if len(groups) > 1:
        parts = "; ".join(f"{text} ({', '.join(targets)})" for text, targets in groups.values())
        notes.append(f"artifacts were benchmarked on different hosts: {parts}. Their latencies "
                     "are not comparable; the Host section shows the first.")
    return summary, notes


def _threads(bench: dict):
    host = bench.get("host")
    if isinstance(host, dict) and host.get("threads") is not None:
        return host["threads"]
    return bench.get("threads")


def host_items(host: dict | None) -> list[tuple[str, str]]:
    """(label, value) lines of the Host section, for markdown and HTML alike."""
    if not host:
        return [("host", "not recorded in any bench.json")]
    if not host.get("cpu_model"):
        items = [("recorded as", str(host.get("description"))),
                 ("note", "older bench.json: no CPU model, ISA flags or runtime versions")]
    else:
        items = [("CPU", str(host["cpu_model"])), ("architecture", str(host.get("arch"))),
                 ("int8-relevant ISA flags", ", ".join(host.get("isa") or []) or "none found"),
                 ("cores", str(host.get("cores"))), ("OS", str(host.get("os"))),
                 ("runtimes", ", ".join(f"{k} {v}" for k, v in host["runtimes"].items())
                  or "none recorded")]
    threads = ", ".join(f"{t} {n}" for t, n in host.get("threads", {}).items())
    return items + ([("threads", threads)] if threads else [])


def host_warnings(old: dict | None, new: dict | None) -> list[str]:
    """Warnings for `report compare`: the two runs' latencies come from different hosts, or one
    of them does not say which host it was."""
    unrecorded = [name for name, host in (("OLD", old), ("NEW", new))
                  if not isinstance(host, dict) or not host.get("cpu_model")]
    if unrecorded:
        return [f"{' and '.join(unrecorded)} record no CPU model / ISA flags: cannot tell whether "
                "the latencies come from the same host"]
    if _identity(old) != _identity(new):
        return [f"OLD and NEW were benchmarked on different hosts (OLD: {describe_host(old)}; "
                f"NEW: {describe_host(new)}): latency changes may come from the machine"]
    return []
