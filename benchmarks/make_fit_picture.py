"""The README's picture of the four fits: `python benchmarks/make_fit_picture.py docs/fits.png`.

scikit-image's astronaut (a public-domain NASA photo shipped with the package), a surgical mask worn each way,
landmark geometry on the top row and rigid on the bottom row."""
import sys

import cv2
import numpy as np
from skimage import data

from masking import FITS, LandmarkFinder, MaskSpec, apply_mask


def main(out: str) -> None:
    img = data.astronaut()
    (points, (x, y, w, h)), = LandmarkFinder().photo_landmarks(img)
    rows = []
    for geometry in ("landmark", "rigid"):
        tiles = []
        for fit in FITS:
            masked, _ = apply_mask(img, points, MaskSpec("surgical").resolved(), geometry=geometry, fit=fit)
            tile = cv2.resize(masked[max(0, y - 30):y + h + 40, max(0, x - 35):x + w + 35], (160, 180))
            cv2.putText(tile, f"{fit} ({geometry})", (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (255, 255, 255), 1,
                        cv2.LINE_AA)
            tiles.append(tile)
        rows.append(np.hstack(tiles))
    cv2.imwrite(out, cv2.cvtColor(np.vstack(rows), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    print(out)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "docs/fits.png")
