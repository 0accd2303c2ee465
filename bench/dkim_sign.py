"""Cost of one DKIM signature on a ~30 KB digest: dkimpy against digest's own signer, same process.

Run: .venv/bin/python bench/dkim_sign.py [--messages 300]

All three sign the same message with the same RSA-2048 key, relaxed/relaxed, the same fields:
dkimpy's ``dkim.sign`` (the library a sender would reach for), ``DkimSigner.sign`` on the
assembled bytes, and ``assemble`` with signing on (the body hash from the cached canonical
pieces), less ``assemble`` without signing. The bare RSA operation is timed for reference.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import dkim
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

sys.path.insert(0, str(Path(__file__).parent))

from send_throughput import body_text

from digest.config import load_settings
from digest.mail.dkim import SIGNED_FIELDS
from digest.mail.dkim_keys import keygen
from digest.mail.message import Personal, Sender, assemble
from digest.mail.message_id import new_message_id


def per_call(f: Callable[[int], object], n: int) -> float:
    """Seconds per call of ``f(i)``, best of three rounds of ``n``."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for i in range(n):
            f(i)
        best = min(best, (time.perf_counter() - start) / n)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        key_file = Path(tmp) / "rsa.pem"
        keygen(key_file, selector="s1", domain="example.org")
        common = {"secret_key": "k" * 40, "DIGEST_FROM": "The Daily Brief <news@example.org>"}
        plain = Sender.from_settings(load_settings(**common))
        signing = Sender.from_settings(
            load_settings(**common, dkim_selector="s1", dkim_key_file=key_file)
        )
    signer = signing.signer
    if signer is None or not isinstance(signer.keys[0].private_key, RSAPrivateKey):
        raise SystemExit("RSA signing did not turn on")
    rsa_key = signer.keys[0].private_key
    pem = rsa_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    text, html = body_text(30_000)
    who = [
        Personal(f"reader{i}@example.org", f"Reader {i}", new_message_id("example.org"),
                 datetime.now(UTC), f"https://n.example/u/{i}", f"https://n.example/p/{i}")
        for i in range(args.messages)
    ]  # fmt: skip
    messages = [assemble("The Daily Brief", text, html, p, plain) for p in who]
    fields = [f.encode() for f in SIGNED_FIELDS]
    n = args.messages
    rows = {
        "dkimpy `dkim.sign`": per_call(
            lambda i: dkim.sign(
                messages[i],
                b"s1",
                b"example.org",
                pem,
                canonicalize=(b"relaxed", b"relaxed"),
                include_headers=fields,
            ),
            max(20, n // 10),
        ),
        "`DkimSigner.sign` (whole body canonicalised)": per_call(
            lambda i: signer.sign(messages[i], 1796000000), n
        ),
        "`assemble` signed, minus unsigned (cached body pieces)": per_call(
            lambda i: assemble("The Daily Brief", text, html, who[i], signing), n
        )
        - per_call(lambda i: assemble("The Daily Brief", text, html, who[i], plain), n),
        "bare RSA-2048 PKCS#1 v1.5 signature": per_call(
            lambda i: rsa_key.sign(messages[i][:600], padding.PKCS1v15(), hashes.SHA256()),
            n,
        ),
    }
    print(f"message size {len(messages[0]):,} bytes, {n} messages\n")
    print("| signer | per message |\n| --- | ---: |")
    for name, seconds in rows.items():
        print(f"| {name} | {seconds * 1e3:.3f} ms |")


if __name__ == "__main__":
    main()
