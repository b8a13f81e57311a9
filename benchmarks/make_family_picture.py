"""The README's picture of the mask families: `python benchmarks/make_family_picture.py docs/families.png`.

Faces scikit-image ships (the astronaut, a public-domain NASA photo, and LFW thumbnails upscaled 4x), grey like
FER2013: per face the clean crop, the template family with its fixed look, the template family with the look drawn
at random (the default training masks), the surface family (validation), the photo family (test) and a flat mask
(the reference of what the visible face can tell), all worn over the nose. Nothing from FER2013 is drawn here."""
import sys

import cv2
import numpy as np
from skimage import data

from masking import LandmarkFinder, MaskSpec, apply_mask
from masking.photo import apply_photo
from masking.pipeline import MaskConfig
from masking.placement import apply_flat
from masking.surface import apply_surface

TYPES = ("surgical", "n95", "kn95", "cloth")


def faces():
    finder = LandmarkFinder()
    img = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2GRAY)
    out = [(img, finder.photo_landmarks(img)[0])]
    for face in (data.lfw_subset()[:60] * 255).astype(np.uint8):
        big = cv2.copyMakeBorder(cv2.resize(face, (100, 100), interpolation=cv2.INTER_CUBIC), 50, 50, 50, 50,
                                 cv2.BORDER_REPLICATE)
        found = finder.photo_landmarks(big)
        if found:
            out.append((big, found[0]))
    return out[:6]


def main(out: str) -> None:
    rows = []
    random_look = MaskConfig(appearance="random")
    for i, (img, (points, (x, y, w, h))) in enumerate(faces()):
        kind = TYPES[i % 4]
        fixed, _ = apply_mask(img, points, MaskSpec(kind).resolved())
        look = random_look.spec_for(i)  # a drawn colour, texture and edge, on this face's type
        drawn, _ = apply_mask(img, points, MaskSpec(kind, "", look.texture, look.rgb, look.softness).resolved())
        surface, _, _ = apply_surface(img, points, kind, np.random.default_rng([3, i]))
        photo, _, _ = apply_photo(img, points, kind, np.random.default_rng([5, i]))
        flat, _ = apply_flat(img, points, MaskSpec(kind).resolved(), float(np.random.default_rng([7, i]).uniform(0, 255)))
        m = int(0.25 * w)
        box = (slice(max(0, y - m), y + h + m), slice(max(0, x - m), x + w + m))
        rows.append(np.hstack([cv2.resize(t[box], (120, 120), interpolation=cv2.INTER_AREA)
                               for t in (img, fixed, drawn, surface, photo, flat)]))
    grid = np.vstack(rows)
    header = np.full((22, grid.shape[1]), 255, np.uint8)
    for j, label in enumerate(("clean", "template, fixed", "template, random", "surface (validate)",
                               "photo (test)", "flat (reference)")):
        cv2.putText(header, label, (j * 120 + 4, 15), cv2.FONT_HERSHEY_SIMPLEX, 0.4, 0, 1, cv2.LINE_AA)
    pic = np.vstack([header, grid])
    cv2.imwrite(out, pic, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    print(out, pic.shape)


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", nargs="?", default="docs/families.png", help="the PNG to write")
    main(ap.parse_args().out)
