"""``digest dkim keygen``: a new DKIM key, written 0600, and the DNS record that publishes it.

It needs no store, and reads the settings only for the signing domain: a key file named in
the settings that does not exist yet (the one being made) is no error here.
"""

from __future__ import annotations

from pathlib import Path

import click

from digest.config import load_settings
from digest.mail.dkim_keys import keygen as make_key


@click.group()
def dkim() -> None:
    """Make DKIM keys for signing mail."""


@dkim.command()
@click.option("--selector", required=True, help="the key's selector, e.g. s2026")
@click.option("--ed25519", is_flag=True, help="an Ed25519 key (RFC 8463) instead of RSA-2048")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="where to write the private key (default: dkim-SELECTOR.pem in DIGEST_VAR_DIR)",
)
def keygen(selector: str, ed25519: bool, out: Path | None) -> None:
    """Write a new private key (mode 0600) and print the DNS TXT record to publish."""
    # The keys named in the settings are not read: making one is why this runs.
    unset = dict.fromkeys(
        ("dkim_selector", "dkim_key_file", "dkim_ed25519_selector", "dkim_ed25519_key_file")
    )
    settings = load_settings(make_secret=False, **unset)
    path = out or settings.var_dir / f"dkim-{selector}.pem"
    path.parent.mkdir(parents=True, exist_ok=True)
    key = make_key(
        path,
        selector=selector,
        domain=settings.dkim_domain or settings.from_domain,
        ed25519=ed25519,
    )
    click.echo(key.zone_line)
    prefix = "DIGEST_DKIM_ED25519" if ed25519 else "DIGEST_DKIM"
    click.echo(
        f"wrote {key.path} (mode 0600). Publish the record above, then set "
        f"{prefix}_SELECTOR={selector} and {prefix}_KEY_FILE={key.path.resolve()}",
        err=True,
    )
