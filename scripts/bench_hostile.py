#!/usr/bin/env python3
"""Time and peak memory of `casegate deliver` on each hostile mail shape.

    scripts/bench_hostile.py [CASEGATE_BINARY]    (default target/release/casegate)

For each shape of scripts/hostile_mail.py: a fresh gateway (`casegate init`, a case with
six vendor contacts, min_assurance "address"), one `deliver` from standard input, timed
with its peak RSS (wait4), then `outbox send` (file transport) and the bytes written to
the outbox. Prints a Markdown table for docs/BENCHMARKS.md.
"""
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else os.path.join(ROOT, "target/release/casegate")
MIB = 1024 * 1024


def cli(cfg, *args):
    subprocess.run([BIN, "--config", cfg, *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def gateway(tmp):
    d = os.path.join(tmp, "gw")
    subprocess.run([BIN, "init", d, "--domain", "cert.example"], check=True, stdout=subprocess.DEVNULL)
    cfg = os.path.join(d, "casegate.toml")
    with open(cfg) as f:
        text = f.read()
    text += '\n[posting]\nmin_assurance = "address"\n[log]\nlevel = "warn"\n'
    with open(cfg, "w") as f:
        f.write(text)
    cli(cfg, "org", "add", "CERT", "--kind", "coordinator", "--domain", "cert.example")
    cli(cfg, "org", "add", "Acme", "--kind", "vendor", "--domain", "acme.example")
    cli(cfg, "contact", "add", "cora@cert.example", "--name", "Cora", "--org", "CERT")
    cli(cfg, "contact", "add", "vendor@acme.example", "--name", "Vera", "--org", "Acme")
    for i in range(5):
        cli(cfg, "contact", "add", f"v{i}@acme.example", "--name", f"V{i}", "--org", "Acme")
    cli(cfg, "case", "create", "--id", "VU#424242", "--title", "Hostile mail")
    cli(cfg, "case", "add-participant", "VU#424242", "--org", "Acme")
    return d, cfg


def deliver(cfg, mail):
    with open(mail, "rb") as f:
        start = time.monotonic()
        p = subprocess.Popen([BIN, "--config", cfg, "deliver", "--json"], stdin=f,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        out = p.stdout.read()
        _, status, usage = os.wait4(p.pid, 0)
        elapsed = time.monotonic() - start
    return elapsed, usage.ru_maxrss * 1024, status, out.decode(errors="replace")


def outbox_bytes(d):
    o = os.path.join(d, "outbox")
    return sum(os.path.getsize(os.path.join(o, f)) for f in os.listdir(o))


def main():
    shapes = subprocess.run([sys.executable, os.path.join(ROOT, "scripts/hostile_mail.py"), "--list"],
                            check=True, capture_output=True, text=True).stdout.split()
    print("| shape | mail | time | peak RSS | RSS / mail | outcome | outbox |")
    print("|---|---:|---:|---:|---:|---|---:|")
    for shape in shapes:
        with tempfile.TemporaryDirectory() as tmp:
            d, cfg = gateway(tmp)
            mail = os.path.join(tmp, "mail.eml")
            subprocess.run([sys.executable, os.path.join(ROOT, "scripts/hostile_mail.py"), shape, mail], check=True)
            size = os.path.getsize(mail)
            elapsed, rss, status, out = deliver(cfg, mail)
            outcome = "exit %d" % (status >> 8)
            if status == 0:
                import json
                o = json.loads(out)
                outcome = f"{o['decision']} {o['reason']}"
            cli(cfg, "outbox", "send")
            sent = outbox_bytes(d)
            print(f"| {shape} | {size / MIB:.1f} MiB | {elapsed:.2f} s | {rss / MIB:.0f} MiB | "
                  f"{rss / size:.1f}× | {outcome} | {sent / MIB:.1f} MiB |", flush=True)


if __name__ == "__main__":
    main()
