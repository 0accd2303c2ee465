"""Render a sample digest's HTML part in headless Chromium at 600 px and 375 px wide.

Run: .venv/bin/python bench/screenshots.py [--out docs]
Writes docs/digest-600.png and docs/digest-375.png (and digest-dark-375.png, dark mode).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1]))  # for tests.support.programs

from _sample import LOCAL_DATE, sample_png, sample_selection
from tests.support.programs import chromium, screenshot

from digest.compose.render import DigestRenderer
from digest.config import load_settings
from digest.mail.message import EMAIL, NAME, PREFERENCES_URL, UNSUBSCRIBE_URL


def personal_html(html: str) -> str:
    """The HTML part as one subscriber sees it."""
    return (
        html.replace(EMAIL, "ann@example.org")
        .replace(NAME, "Ann")
        .replace(UNSUBSCRIBE_URL, "https://news.example.com/unsubscribe/TOKEN")
        .replace(PREFERENCES_URL, "https://news.example.com/preferences/TOKEN")
    )


def shoot(html_file: Path, png: Path, width: int, height: int, *, dark: bool = False) -> None:
    """One screenshot of ``html_file`` in a fresh browser profile."""
    binary = chromium()
    if binary is None:
        raise SystemExit("chromium not found: apt-get install chromium")
    extra = ["--hide-scrollbars"]
    if dark:
        extra += ["--force-dark-mode", "--blink-settings=preferredColorScheme=0"]
    screenshot(binary, html_file.as_uri(), png, width, height, extra)


def main() -> None:
    """Render the sample and take the screenshots."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("docs"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        image = sample_png(work / "picture.png")
        settings = load_settings(site_name="The Daily Brief", secret_key="x" * 40, var_dir=work)
        body = DigestRenderer(settings).render_body(
            sample_selection(image.as_uri(), count=7),
            cadence="daily",
            local_date=LOCAL_DATE,
            archive_url="https://news.example.com/archive/1",
        )
        page = work / "digest.html"
        page.write_text(personal_html(body.content.html), encoding="utf-8")
        shoot(page, args.out / "digest-600.png", 600, 2640)
        shoot(page, args.out / "digest-375.png", 375, 2760)
        shoot(page, args.out / "digest-dark-375.png", 375, 1400, dark=True)
    print(f"wrote {args.out}/digest-600.png, digest-375.png, digest-dark-375.png")


if __name__ == "__main__":
    main()
