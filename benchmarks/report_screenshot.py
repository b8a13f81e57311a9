"""The first screen of a report, as the README shows it: `python benchmarks/report_screenshot.py FOLDER OUT.png`.

Headless Chromium at 1280x800 (the report's own layout), scaled to 640x400."""
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image


def main(folder: str, out: str) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    with tempfile.TemporaryDirectory() as tmp:
        shot = Path(tmp) / "shot.png"
        subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        f"--user-data-dir={tmp}/profile", "--window-size=1280,800", f"--screenshot={shot}",
                        (Path(folder) / "report.html").resolve().as_uri()], check=True, capture_output=True,
                       timeout=120)
        Image.open(shot).convert("RGB").resize((640, 400), Image.LANCZOS).save(out, optimize=True)
    print(out)


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", help="a run or study folder with report.html")
    ap.add_argument("out", help="the PNG to write")
    a = ap.parse_args()
    if not (Path(a.folder) / "report.html").is_file():
        ap.error(f"{a.folder}: no report.html")
    if not (shutil.which("chromium") or shutil.which("chromium-browser")):
        ap.error("chromium is not installed (apt-get install chromium)")
    main(a.folder, a.out)
