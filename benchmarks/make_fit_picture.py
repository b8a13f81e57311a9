"""The four fits as the pipeline draws them.

    python benchmarks/make_fit_picture.py docs/fits.png                       # the README's picture
    python benchmarks/make_fit_picture.py /tmp/fits-fer.png --data $FER2013_CSV --rows 6   # FER2013 rows

The README's picture: scikit-image's astronaut (a public-domain NASA photo shipped with the package), a surgical
mask worn each way, landmark geometry on the top row and rigid on the bottom row, with the eye clearance the
pipeline gives detected landmarks for each fit (`masking.pipeline.eye_clearance`). With --data: PrivateTest rows
(every 97th from the first, so not only the easy ones), each at 4x, with maskfer's own landmarks and status, one row
of tiles per face; FER2013 images are not to be committed, so write that picture outside the repository.
"""
import argparse

import cv2
import numpy as np
from skimage import data

from masking import FITS, STATUSES, LandmarkFinder, MaskSpec, apply_mask
from masking.pipeline import eye_clearance


def _label(tile: np.ndarray, text: str) -> np.ndarray:
    cv2.putText(tile, text, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (255, 255, 255), 1, cv2.LINE_AA)
    return tile


def astronaut_rows() -> list[np.ndarray]:
    img = data.astronaut()
    (points, (x, y, w, h)), = LandmarkFinder().photo_landmarks(img)
    rows = []
    for geometry in ("landmark", "rigid"):
        tiles = []
        for fit in FITS:
            margin, floor = eye_clearance(STATUSES.index("detected"), img.shape[0], fit)
            masked, _ = apply_mask(img, points, MaskSpec("surgical").resolved(), margin, floor, geometry=geometry,
                                   fit=fit)
            tile = cv2.resize(masked[max(0, y - 30):y + h + 40, max(0, x - 35):x + w + 35], (160, 180))
            tiles.append(_label(tile, f"{fit} ({geometry})"))
        rows.append(np.hstack(tiles))
    return rows


def fer_rows(path: str, n: int) -> list[np.ndarray]:
    from datasets import load_dataset
    test = load_dataset(path).split("PrivateTest")
    finder = LandmarkFinder()
    rows = []
    for i in range(0, 97 * n, 97):
        img = test.images[i]
        points, status = finder.crop_landmarks(img)
        tiles = [_label(cv2.cvtColor(cv2.resize(img, (160, 160), interpolation=cv2.INTER_CUBIC), cv2.COLOR_GRAY2RGB),
                        f"row {int(test.rows[i])} {status}")]
        for fit in FITS:
            margin, floor = eye_clearance(STATUSES.index(status), img.shape[0], fit)
            masked, _ = apply_mask(img, points, MaskSpec("surgical").resolved(), margin, floor, fit=fit)
            tile = cv2.cvtColor(cv2.resize(masked, (160, 160), interpolation=cv2.INTER_CUBIC), cv2.COLOR_GRAY2RGB)
            tiles.append(_label(tile, fit))
        rows.append(np.hstack(tiles))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", nargs="?", default="docs/fits.png")
    ap.add_argument("--data", help="FER2013: draw PrivateTest rows instead of the astronaut")
    ap.add_argument("--rows", type=int, default=6)
    a = ap.parse_args()
    rows = fer_rows(a.data, a.rows) if a.data else astronaut_rows()
    cv2.imwrite(a.out, cv2.cvtColor(np.vstack(rows), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    print(a.out)


if __name__ == "__main__":
    main()
