#!/usr/bin/env python3
"""bench/results/passthrough.png from bench/results/passthrough.json (written by passthrough.sh):
requests/s and CPU per request (median of the rounds, every round as a dot) and resident memory."""
import json
import statistics
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

src = sys.argv[1] if len(sys.argv) > 1 else "bench/results/passthrough.json"
out = sys.argv[2] if len(sys.argv) > 2 else "bench/results/passthrough.png"
data = json.load(open(src))
targets = [t for t in ["direct", "nginx", "pingora", "gateway"] if t in data["rounds"]]
proxies = [t for t in targets if t != "direct"]
colors = {"direct": "#999999", "nginx": "#009639", "pingora": "#8a6fdf", "gateway": "#f38020"}
rounds = {t: [[float(x) if x != "-" else None for x in r] for r in data["rounds"][t]] for t in targets}

fig, (a, b, c) = plt.subplots(1, 3, figsize=(13, 4))
for i, t in enumerate(targets):
    rps = [r[0] for r in rounds[t]]
    a.bar(i, statistics.median(rps), color=colors[t])
    a.scatter([i] * len(rps), rps, color="black", s=8, zorder=3)
a.set_xticks(range(len(targets)), targets)
a.set_title("requests/s (higher is better)")
for i, t in enumerate(proxies):
    cpu = [r[3] for r in rounds[t] if r[3] is not None]
    b.bar(i, statistics.median(cpu), color=colors[t])
    b.scatter([i] * len(cpu), cpu, color="black", s=8, zorder=3)
b.set_xticks(range(len(proxies)), proxies)
b.set_title("proxy CPU µs per request (lower is better)")
mem = data["memory_kib"]
shown = [t for t in ["nginx", "pingora", "gateway"] if t in mem]
for i, t in enumerate(shown):
    idle, conns, load = (v / 1024 for v in mem[t])
    c.bar(i - 0.27, idle, 0.27, color=colors[t], alpha=0.35, label="idle" if i == 0 else None)
    c.bar(i, conns, 0.27, color=colors[t], alpha=0.65, label="1,000 idle conns" if i == 0 else None)
    c.bar(i + 0.27, load, 0.27, color=colors[t], label="1,000 busy conns" if i == 0 else None)
c.set_xticks(range(len(shown)), shown)
c.set_title("resident memory MiB (idle | idle conns | busy)")
fig.suptitle("logout-gateway passthrough vs nginx proxy_pass and a direct connection (one machine, one run)")
fig.tight_layout()
fig.savefig(out, dpi=100)
print(out)
