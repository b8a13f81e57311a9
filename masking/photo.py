"""The third mask family, `photo`: photographed textures cut by a per-type outline, kept for testing only.

Made differently again from `templates` + `placement` (a drawn template warped by a homography) and from `surface`
(a shaded height field): no template, no homography, no height field, no light, no colour table, no drawn pattern.
Per face:

1. Outline: a polygon per mask type built from the landmarks in the eye frame (`placement.eye_frame`): surgical a
   trapezoid whose straight top edge crosses the nose and whose sides follow the jaw; n95 an ellipse from the top
   edge to below the chin; kn95 a hexagon pointed at the nose and under the chin; cloth a rounded outline whose top
   arcs over the nose. How it is worn moves the top edge (`high`: the top of the nose bridge, `nose`: its middle,
   `mouth`: between the nose's base and the upper lip, `chin`: below the lower lip). Filled at 4x, area-averaged
   down, then blurred by a random edge width, at most a twentieth of the eyes' distance (no ramp).
2. Material: a photograph scikit-image ships (brick, grass, gravel, the moon's surface, a printed page), cropped at a
   random place, scale and angle, its contrast and mean level drawn per row (black to white; a random hue on RGB
   photos).
3. Compositing: the face's own low-frequency light is carried onto the material at a random share (a mask in the
   same light as the face), then alpha-blended.
4. The eye clearance of `placement.below_eyes` (a rule of the project, not an appearance): no mask reaches the eyes.
"""
from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from .placement import below_eyes, below_line, eye_frame, lower_face_hull

MATERIALS = ("brick", "grass", "gravel", "moon", "page")
# In the cache key of every photo-family mask (tests/test_versions.py pins this file's hash to it).
# 2: a narrower edge blur and, worn `mouth` or `chin`, nothing above the fit's cut (it reached the nose base).
PHOTO_VERSION = 2


@lru_cache(maxsize=None)
def material(name: str) -> np.ndarray:
    """(H, W) float32, zero mean and unit spread: scikit-image's photograph `name` (shipped with the package)."""
    from skimage import data  # scikit-image's own photographs; imported here so masking starts without it
    img = getattr(data, name)().astype(np.float32)
    img = img - cv2.GaussianBlur(img, (0, 0), 24)  # the texture, not the photograph's slow light
    return (img - img.mean()) / max(float(img.std()), 1e-6)


def _top(q: np.ndarray, fit: str) -> float:
    """The outline's top edge in the middle (eye-frame y) for a fit."""
    if fit == "high":
        return float(q[27, 1] + 0.03)
    if fit == "mouth":
        return float((q[33, 1] + q[51, 1]) / 2)
    if fit == "chin":
        return float(q[48:68, 1].max() + 0.08)
    return float((q[27, 1] + q[30, 1]) / 2 - 0.12)  # the nose bridge's middle, as the other families wear it


def _jaw_at(q: np.ndarray, y: float, side: int) -> float:
    """x of the jaw (landmarks 0-8 or 16-8) at eye-frame height y, clamped at its ends."""
    half = q[0:9] if side < 0 else q[16:7:-1]
    ys = np.maximum.accumulate(half[:, 1])
    return float(np.interp(y, ys, half[:, 0]))


def outline(q: np.ndarray, mask_type: str, fit: str, rng: np.random.Generator) -> np.ndarray:
    """(K, 2) float64 polygon in the eye frame of landmarks `q` (68, 2), eye-frame coordinates."""
    top = _top(q, fit)
    bottom = float(q[8, 1]) + rng.uniform(0.05, 0.18)
    wide = rng.uniform(0.0, 0.12)
    cx = float(q[27:31, 0].mean())
    mid = (top + bottom) / 2
    xl = min(_jaw_at(q, max(top, q[30, 1]), -1), _jaw_at(q, mid, -1)) - wide
    xr = max(_jaw_at(q, max(top, q[30, 1]), 1), _jaw_at(q, mid, 1)) + wide
    if mask_type == "n95":
        t = np.linspace(0, 2 * np.pi, 48, endpoint=False)
        a, b = (xr - xl) / 2, (bottom - top) / 2
        return np.stack([(xl + xr) / 2 + a * np.cos(t), mid + b * np.sin(t)], 1)
    if mask_type == "kn95":
        point = rng.uniform(0.05, 0.15)
        shoulder = top + 0.25 * (bottom - top)
        low = max(shoulder + 0.05, bottom - 0.25)
        return np.array([[cx, top], [xr, shoulder], [_jaw_at(q, low, 1) + wide, low], [cx, bottom + point],
                         [_jaw_at(q, low, -1) - wide, low], [xl, shoulder]])
    jaw_y = np.linspace(max(top, q[2, 1]), float(q[8, 1]), 8)
    right = [[_jaw_at(q, y, 1) + wide, y] for y in jaw_y]
    left = [[_jaw_at(q, y, -1) - wide, y] for y in jaw_y[::-1]]
    if mask_type == "surgical":
        top_edge = [[xl, top + 0.02], [xr, top + 0.02]]
    else:  # cloth: the top arcs over the nose
        xs = np.linspace(xl, xr, 12)
        rise = rng.uniform(0.1, 0.25)
        top_edge = [[x, top + rise * (2 * (x - cx) / max(xr - xl, 1e-3)) ** 2 * 2] for x in xs]
    chin = [[cx, bottom]]
    return np.array(top_edge + right + chin + left, np.float64)


def photo_layers(points: np.ndarray, mask_type: str, rng: np.random.Generator, w: int, h: int, rgb: bool = False,
                 margin: float = 0.12, eye_floor: float | None = None,
                 fit: str = "nose") -> tuple[np.ndarray, np.ndarray]:
    """The mask of `apply_photo` as layers: (alpha (h, w) float32 0..1, material (h, w, 3) float32 0..255)."""
    k = int(max(1, min(4, np.ceil(192 / max(h, w)))))
    F = eye_frame(points.astype(np.float64))
    q = points.astype(np.float64) @ F[:, :2].T + F[:, 2]
    iod = 1.0 / float(np.hypot(*F[0, :2]))
    poly = outline(q, mask_type, fit, rng) @ cv2.invertAffineTransform(F)[:, :2].T + cv2.invertAffineTransform(F)[:, 2]
    big = np.zeros((h * k, w * k), np.uint8)
    cv2.fillPoly(big, [np.round((poly * k + (k - 1) / 2) * 8).astype(np.int32)], 255, cv2.LINE_AA, shift=3)
    sigma = rng.uniform(0.01, 0.05) * iod
    alpha = cv2.resize(big.astype(np.float32) / 255, (w, h), interpolation=cv2.INTER_AREA) if k > 1 else big / 255.0
    if sigma > 0.3:
        alpha = cv2.GaussianBlur(alpha.astype(np.float32), (0, 0), sigma)
    alpha = np.clip(alpha, 0, 1).astype(np.float32) * below_eyes(points, w, h, margin, eye_floor)
    if fit in ("mouth", "chin"):  # the blur spreads upwards too: nothing above the fit's own cut (as every family)
        alpha *= below_line(points, w, h, _top(q, fit))

    tex = material(MATERIALS[rng.integers(len(MATERIALS))])
    zoom = rng.uniform(0.1, 0.5) * max(w, h) / 48  # face pixels per photograph pixel
    centre = (rng.uniform(0.3, 0.7) * tex.shape[1], rng.uniform(0.3, 0.7) * tex.shape[0])
    M = cv2.getRotationMatrix2D(centre, rng.uniform(0, 360), zoom)
    M[:, 2] += np.array([w / 2 - centre[0], h / 2 - centre[1]])
    grain = cv2.warpAffine(tex, M, (w, h), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT)
    level, contrast = rng.uniform(12, 245), rng.uniform(6, 60)
    value = level + contrast * grain
    if rgb:
        hsv = np.uint8([[[rng.integers(0, 180), rng.integers(0, 200), 255]]])
        tint = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32) / 255
        colour = value[..., None] * tint / max(float(tint @ [0.299, 0.587, 0.114]), 1e-3)
    else:
        colour = np.repeat(value[..., None], 3, axis=2)
    return alpha, np.clip(colour, 0, 255).astype(np.float32)


def apply_photo(image: np.ndarray, points: np.ndarray, mask_type: str, rng: np.random.Generator,
                margin: float = 0.12, eye_floor: float | None = None,
                fit: str = "nose") -> tuple[np.ndarray, float, int]:
    """Draw a `photo` mask of `mask_type` on the face given by `points`.

    image: (H, W) uint8 grey or (H, W, 3) uint8 RGB; points: (68, 2) landmarks in its pixels; rng: the row's
    generator (every random choice comes from it); margin, eye_floor: `placement.below_eyes`; fit: "chin",
    "mouth", "nose" or "high". Returns (masked image, same shape and dtype; fraction of the lower-face hull
    covered; the mask's mean grey level 0..255)."""
    h, w = image.shape[:2]
    alpha, colour = photo_layers(points, mask_type, rng, w, h, image.ndim == 3, margin, eye_floor, fit)
    img = image.astype(np.float32)
    grey_face = img @ np.array([0.299, 0.587, 0.114], np.float32) if img.ndim == 3 else img
    light = cv2.GaussianBlur(grey_face, (0, 0), max(w, h) / 12)
    inside = alpha > 0.5
    share = rng.uniform(0.0, 0.6)
    if inside.any():  # the face's own light, carried onto the material
        colour = colour * ((light / max(float(light[inside].mean()), 1.0)) ** share)[..., None]
    colour = np.clip(colour, 0, 255)
    grey = colour @ np.array([0.299, 0.587, 0.114], np.float32)
    out = img * (1 - alpha[..., None]) + colour * alpha[..., None] if img.ndim == 3 else img * (1 - alpha) + grey * alpha
    hull = np.zeros((h, w), np.uint8)
    cv2.fillConvexPoly(hull, lower_face_hull(points), 1)
    coverage = float(alpha[hull > 0].mean()) if hull.any() else 0.0
    level = int(np.clip(grey[inside].mean() if inside.any() else 0, 0, 255))
    return np.clip(out + 0.5, 0, 255).astype(np.uint8), coverage, level
