"""The second mask family, `surface`: a curved sheet over the lower face, shaded by a light, made differently from
`templates` + `placement` (a flat drawn template warped by a homography) so that a model trained on one family can
be scored on masks it never saw.

Nothing of the template family's appearance is used here: no template, no homography, no colour table, no
texture table, no face-matched brightness. Per face:

1. Geometry, in the eye frame (`placement.eye_frame`: origin between the eyes, one unit per inter-ocular distance):
   the sheet spans the jaw (landmarks 0-16, widened a little) from a top edge that rises to the nose bridge in the
   middle and drops towards the cheeks, down to just below the jaw line. How it is worn moves the top edge:
   `high` at the top of the nose bridge (27), `nose` at the bridge's middle (27 to 30), `mouth` between the nose's base (33) and
   the upper lip (51), `chin` below the lower lip (57).
2. A height field over the sheet's own (u, v) coordinates, by type: a cylinder with three pleats (surgical), a
   dome (n95), a ridge folded down the middle (kn95), a cylinder with a centre seam (cloth); random folds on top.
   Normals from its gradient, Lambertian shading from a random light direction, a random ambient share.
3. Appearance drawn per row: grey level (or colour, for RGB photos) over the whole range, black masks included;
   a pattern in the sheet's coordinates (stripes at any angle, checks, dots, printed blobs, woven grain, or none)
   at a random contrast; an exhalation valve on some n95/kn95 masks; ear loops; edge softness; sensor noise.
4. The eye clearance of `placement.below_eyes` (a rule of the project, not an appearance): no mask reaches the eyes.

Rendered at 4x for small faces (FER2013's 48x48 rows) and area-averaged down, so edges are anti-aliased.
"""
from __future__ import annotations

import cv2
import numpy as np

from .placement import below_eyes, eye_frame, lower_face_hull

PATTERNS = ("none", "stripes", "checks", "dots", "print", "grain")
DEPTH = 0.45  # the sheet's relief, in inter-ocular distances (a mask stands this far off the face at its middle)


def _top_height(q: np.ndarray, fit: str) -> float:
    """The sheet's top edge in the middle (eye-frame y) for a fit."""
    if fit == "high":
        return float(q[27, 1])
    if fit == "mouth":
        return float((q[33, 1] + q[51, 1]) / 2)
    if fit == "chin":
        return float(q[57, 1] + 0.05)
    return float((q[27, 1] + q[30, 1]) / 2 - 0.12)  # the nose bridge's middle, as the template family's anchor


def _jaw_x(half: np.ndarray, y: np.ndarray) -> np.ndarray:
    ys = np.maximum.accumulate(half[:, 1])
    return np.interp(y, ys, half[:, 0])


def _field(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    """Smooth random field, (h, w) float32, about unit amplitude."""
    n = rng.normal(0, 1, (cells, cells)).astype(np.float32)
    return cv2.resize(n, (w, h), interpolation=cv2.INTER_CUBIC)


def _relief(mask_type: str, u: np.ndarray, v: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Height of the sheet (0..~1) at sheet coordinates u (across, 0..1) and v (down, 0..1)."""
    x = 2 * u - 1
    if mask_type == "n95":
        z = np.sqrt(np.clip(1 - x ** 2 - 0.6 * (2 * v - 1) ** 2, 0, None))
    elif mask_type == "kn95":
        z = 1 - np.abs(x) ** 1.1
    else:
        z = np.sqrt(np.clip(1 - x ** 2, 0, None))
    if mask_type == "surgical":  # three pleats: a saw-tooth in v
        phase = rng.uniform(0, 1)
        z = z + 0.06 * ((3 * v + phase) % 1.0)
    elif mask_type == "cloth":  # a seam down the middle
        z = z - 0.05 * np.exp(-(x / 0.04) ** 2)
    return z


def _pattern(kind: str, u: np.ndarray, v: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """0..1 field in the sheet's coordinates: where the second colour shows."""
    if kind == "stripes":
        a, f = rng.uniform(0, np.pi), rng.uniform(3, 10)
        return (np.sin(2 * np.pi * f * (u * np.cos(a) + v * np.sin(a))) > 0).astype(np.float32)
    if kind == "checks":
        f = rng.uniform(2, 6)
        return ((np.floor(f * u) + np.floor(f * v)) % 2).astype(np.float32)
    if kind == "dots":
        f = rng.uniform(4, 9)
        return ((((f * u) % 1 - 0.5) ** 2 + ((f * v) % 1 - 0.5) ** 2) < 0.07).astype(np.float32)
    if kind == "print":  # blobs: flowers, logos, a printed smile: anything that is not a flat colour
        out = np.zeros_like(u, dtype=np.float32)
        for _ in range(rng.integers(2, 7)):
            cu, cv_, r = rng.uniform(0.1, 0.9), rng.uniform(0.1, 0.9), rng.uniform(0.05, 0.2)
            out = np.maximum(out, (((u - cu) ** 2 + (v - cv_) ** 2) < r ** 2).astype(np.float32))
        return out
    if kind == "grain":
        return np.clip(0.5 + 0.5 * rng.normal(0, 1, u.shape), 0, 1).astype(np.float32)
    return np.zeros_like(u, dtype=np.float32)


def _colours(rng: np.random.Generator, rgb: bool) -> tuple[np.ndarray, np.ndarray]:
    """The mask's colour and its pattern's second colour, (3,) float32 each (grey: all three equal)."""
    level = rng.uniform(12, 245)
    if not rgb:
        other = np.clip(level + rng.choice([-1, 1]) * rng.uniform(30, 120), 0, 255)
        return np.full(3, level, np.float32), np.full(3, other, np.float32)
    hsv = np.uint8([[[rng.integers(0, 180), rng.integers(0, 200), int(level)]]])
    hsv2 = np.uint8([[[rng.integers(0, 180), rng.integers(0, 255), int(rng.uniform(12, 245))]]])
    return (cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32),
            cv2.cvtColor(hsv2, cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32))


def apply_surface(image: np.ndarray, points: np.ndarray, mask_type: str, rng: np.random.Generator,
                  margin: float = 0.12, eye_floor: float | None = None,
                  fit: str = "nose") -> tuple[np.ndarray, float, int]:
    """Draw a `surface` mask of `mask_type` on the face given by `points`.

    image: (H, W) uint8 grey or (H, W, 3) uint8 RGB; points: (68, 2) landmarks in its pixels; rng: the row's
    generator (every random choice is drawn from it, so the mask depends only on it and the face); margin,
    eye_floor: `placement.below_eyes`; fit: "chin", "mouth", "nose" or "high".
    Returns (masked image, same shape and dtype; fraction of the lower-face hull covered; the mask's mean grey
    level 0..255).
    """
    h, w = image.shape[:2]
    alpha, colour = surface_layers(points, mask_type, rng, w, h, image.ndim == 3, margin, eye_floor, fit)
    img = image.astype(np.float32)
    grey = colour @ np.array([0.299, 0.587, 0.114], np.float32)
    out = img * (1 - alpha[..., None]) + colour * alpha[..., None] if img.ndim == 3 else img * (1 - alpha) + grey * alpha
    hull = np.zeros((h, w), np.uint8)
    cv2.fillConvexPoly(hull, lower_face_hull(points), 1)
    coverage = float(alpha[hull > 0].mean()) if hull.any() else 0.0
    covered = alpha > 0.5
    level = int(np.clip(grey[covered].mean() if covered.any() else 0, 0, 255))
    return np.clip(out + 0.5, 0, 255).astype(np.uint8), coverage, level


def surface_layers(points: np.ndarray, mask_type: str, rng: np.random.Generator, w: int, h: int, rgb: bool = False,
                   margin: float = 0.12, eye_floor: float | None = None,
                   fit: str = "nose") -> tuple[np.ndarray, np.ndarray]:
    """The mask of `apply_surface` as layers: (alpha (h, w) float32 0..1, colour (h, w, 3) float32 0..255)."""
    k = int(max(1, min(4, np.ceil(192 / max(h, w)))))  # supersampling for small faces
    H, W = h * k, w * k
    pts = points.astype(np.float64) * k + (k - 1) / 2
    F = eye_frame(pts)
    iod = 1.0 / float(np.hypot(*F[0, :2]))
    q = pts @ F[:, :2].T + F[:, 2]
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float64)
    fx, fy = F[0, 0] * xx + F[0, 1] * yy + F[0, 2], F[1, 0] * xx + F[1, 1] * yy + F[1, 2]

    widen = rng.uniform(0.02, 0.10)
    xl = _jaw_x(q[0:9], fy) - widen
    xr = _jaw_x(q[16:7:-1], fy) + widen
    span = np.maximum(xr - xl, 1e-3)
    u = (fx - xl) / span
    top = _top_height(q, fit)
    drop = rng.uniform(0.15, 0.40) if fit in ("nose", "high") else rng.uniform(0.0, 0.15)
    y_top = top + drop * (2 * np.clip(u, 0, 1) - 1) ** 2
    lower = q[2:15]
    order = np.argsort(lower[:, 0])
    y_bot = np.interp(fx, lower[order, 0], lower[order, 1]) + rng.uniform(0.03, 0.15)
    y_bot = np.maximum(y_bot, top + 0.3)
    v = (fy - y_top) / np.maximum(y_bot - y_top, 1e-3)
    edge = np.minimum.reduce([u * span, (1 - u) * span, fy - y_top, y_bot - fy])  # IODs inside the outline
    soft = rng.uniform(0.01, 0.08)
    alpha = np.clip(edge / soft, 0, 1).astype(np.float32)
    uc, vc = np.clip(u, 0, 1), np.clip(v, 0, 1)

    z = _relief(mask_type, uc, vc, rng) + rng.uniform(0, 0.12) * _field(rng, H, W, 4)
    zpix = z * DEPTH * iod
    gy, gx = np.gradient(zpix)
    normal = np.stack([-gx, -gy, np.ones_like(gx)], -1)
    normal /= np.linalg.norm(normal, axis=-1, keepdims=True)
    az, el = rng.uniform(0, 2 * np.pi), rng.uniform(np.radians(25), np.radians(80))
    light = np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])
    ambient = rng.uniform(0.25, 0.6)
    diffuse = np.clip(normal @ light, 0, None) / max(light[2], 1e-3)
    shade = (ambient + (1 - ambient) * np.clip(diffuse, 0, 1.6)).astype(np.float32)

    base, second = _colours(rng, rgb)
    kind = PATTERNS[rng.choice(len(PATTERNS), p=[0.35, 0.15, 0.1, 0.1, 0.15, 0.15])]
    mix = _pattern(kind, uc, vc, rng) * rng.uniform(0.2, 0.8)
    albedo = base * (1 - mix[..., None]) + second * mix[..., None]
    if mask_type in ("n95", "kn95") and rng.uniform() < 0.35:  # an exhalation valve on one cheek
        cu = rng.choice([0.28, 0.72])
        d2 = ((uc - cu) * span) ** 2 + ((vc - 0.55) * (y_bot - y_top)) ** 2
        r = rng.uniform(0.09, 0.14)
        albedo = np.where((d2 < r ** 2)[..., None], np.full(3, rng.uniform(20, 235), np.float32), albedo)
        shade = np.where(np.abs(np.sqrt(d2) - r) < 0.02, shade * 0.6, shade)
    colour = np.clip(albedo * shade[..., None], 0, 255).astype(np.float32)

    loops = np.zeros((H, W), np.float32)
    if rng.uniform() < 0.7:  # ear loops from the sheet's corners towards the ears, beyond the jaw
        thick = max(1, int(round(0.035 * iod)))
        inv = cv2.invertAffineTransform(F)
        for side, jaw in ((-1, 0), (1, 16)):
            ear = q[jaw] + [side * rng.uniform(0.1, 0.3), rng.uniform(-0.1, 0.2)]
            x_edge = (q[jaw, 0] + side * widen)
            for y in (top + drop, q[8, 1] - rng.uniform(0.1, 0.4)):
                a = inv @ [x_edge, y, 1.0]
                b = inv @ [ear[0], ear[1], 1.0]
                cv2.line(loops, tuple(np.round(a).astype(int)), tuple(np.round(b).astype(int)), 1.0, thick, cv2.LINE_AA)
        loops *= (alpha < 0.5)
        colour = np.where((loops > 0)[..., None], base * 0.9 + 20, colour)
        alpha = np.maximum(alpha, 0.9 * loops)

    if k > 1:
        alpha = cv2.resize(alpha, (w, h), interpolation=cv2.INTER_AREA)
        colour = cv2.resize(colour, (w, h), interpolation=cv2.INTER_AREA)
    alpha = alpha * below_eyes(points, w, h, margin, eye_floor)
    colour = colour + rng.normal(0, rng.uniform(0.5, 4.0), colour.shape).astype(np.float32)
    return alpha, np.clip(colour, 0, 255)
