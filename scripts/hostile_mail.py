#!/usr/bin/env python3
"""Hostile mail shapes for the resource benchmark (docs/BENCHMARKS.md, "Hostile mail").

    scripts/hostile_mail.py SHAPE OUT      write one mail of SHAPE to OUT
    scripts/hostile_mail.py --list         the shapes

Every mail is from vendor@acme.example to the discussion of case VU#424242 at
cert.example (the world scripts/bench_hostile.py sets up), except `intake-*` shapes,
which go to security@cert.example.
"""
import base64
import sys
import zlib

MIB = 1024 * 1024


def head(extra="", to="cases+vu424242@cert.example", subject="[VU#424242] hostile"):
    return (
        "From: Vera Vendor <vendor@acme.example>\r\n"
        f"To: {to}\r\n"
        f"Subject: {subject}\r\n"
        "Date: Fri, 04 Dec 2026 10:00:00 +0000\r\n"
        f"Message-ID: <hostile-{zlib.crc32((extra[:64] + to + subject).encode())}@acme.example>\r\n"
        "MIME-Version: 1.0\r\n"
        f"{extra}"
    )


def references(n):
    ids = "".join(f"\r\n <ref{i}.{'x' * 8}@thread.acme.example>" for i in range(n))
    return (head(f"References:{ids}\r\n") + "Content-Type: text/plain\r\n\r\nok\r\n").encode()


def cc(n):
    addrs = ",\r\n ".join(f"person{i}@cc.example" for i in range(n))
    return (head(f"Cc: {addrs}\r\n") + "Content-Type: text/plain\r\n\r\nok\r\n").encode()


def text_body(size):
    line = ("The quick brown fox jumps over the lazy dog. " * 2)[:78] + "\r\n"
    body = (line * (size // len(line) + 1))[:size]
    return (head() + "Content-Type: text/plain; charset=us-ascii\r\n\r\n").encode() + body.encode()


def nul_base64(encoded_size):
    raw = b"\0" * (encoded_size * 3 // 4)
    b64 = base64.encodebytes(raw).replace(b"\n", b"\r\n")
    return (head() + "Content-Type: text/plain; charset=utf-8\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\n").encode() + b64


def big(size):
    return text_body(size)


def headers(n):
    extra = "".join(f"X-Noise-{i}: {'v' * 40}\r\n" for i in range(n))
    return (head(extra) + "Content-Type: text/plain\r\n\r\nok\r\n").encode()


def parts(n):
    body = "".join(f"--p\r\nContent-Type: text/plain\r\n\r\npart {i}\r\n" for i in range(n))
    return (head() + "Content-Type: multipart/mixed; boundary=p\r\n\r\n" + body + "--p--\r\n").encode()


def deep(n):
    out = head() + 'Content-Type: multipart/mixed; boundary="b0"\r\n\r\n'
    for i in range(1, n):
        out += f'--b{i-1}\r\nContent-Type: multipart/mixed; boundary="b{i}"\r\n\r\n'
    out += f"--b{n-1}\r\nContent-Type: text/plain\r\n\r\ndeep\r\n--b{n-1}--\r\n"
    for i in range(n - 2, -1, -1):
        out += f"--b{i}--\r\n"
    return out.encode()


SHAPES = {
    "references-100k": lambda: references(100_000),
    "references-500k": lambda: references(500_000),
    "cc-100k": lambda: cc(100_000),
    "text-25mib": lambda: text_body(25 * MIB - 4096),
    "nul-base64-20mib": lambda: nul_base64(20 * MIB),
    "headers-100k": lambda: headers(100_000),
    "parts-100k": lambda: parts(100_000),
    "nested-10k": lambda: deep(10_000),
    "oversize-200mib": lambda: big(200 * MIB),
}


def main():
    if len(sys.argv) == 2 and sys.argv[1] == "--list":
        print("\n".join(SHAPES))
        return
    if len(sys.argv) != 3 or sys.argv[1] not in SHAPES:
        sys.exit(f"usage: {sys.argv[0]} SHAPE OUT (shapes: {', '.join(SHAPES)})")
    with open(sys.argv[2], "wb") as f:
        f.write(SHAPES[sys.argv[1]]())


if __name__ == "__main__":
    main()
