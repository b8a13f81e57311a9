"""Placing a template on a face, the MaskTheFace way: six landmark anchors and a homography.

Anchors, in order (matching `templates.ANCHORS`): the nose-bridge midpoint (landmarks 27 and 30);
the jaw line 0-16 crossed at nose-tip height (30), left and right; the jaw crossed at bottom-lip
height (57), left and right; the chin (8). Heights are taken in the face's own frame (eye line made
level), so a tilted head is handled; a turned head gives unequal left and right widths, which the
least-squares homography turns into a perspective warp of the template.
"""
from __future__ import annotations

import cv2
import numpy as np

from .landmarks import eye_centres
from .templates import ANCHORS, MaskSpec, render, render_gray

EYE_MARGIN = 0.12  # the mask's top edge stays this many inter-ocular distances below the lowest eye landmark
GEOMETRIES = ("landmark", "rigid")
# How the mask is worn, from low to high: pulled down to the chin (mouth visible), under the nose (mouth
# covered, nose free), over the nose (the usual way; the default), and high (up to the eye clearance).
FITS = ("chin", "mouth", "nose", "high")

# The rigid geometry, in the eye frame (`eye_frame`: origin between the eye centres, x along the eye line, unit =
# inter-ocular distance), measured on FER2013's HOG-detected rows by benchmarks/bench_rigid.py:
STABLE = [27, 28, 29, 30, 36, 39, 42, 45]  # nose bridge and eye corners: they do not move with the mouth
RIGID_STABLE = np.array([[-0.003, -0.030], [-0.003, 0.163], [-0.003, 0.354], [-0.004, 0.549],
                         [-0.694, 0.002], [-0.295, 0.028], [0.295, 0.029], [0.696, 0.002]])
# The six anchors (as `anchors`) of a face with its mouth open: the median anchors, the lip-height cheeks and
# the chin at the 95th percentile of the surprise rows.
RIGID_ANCHORS = np.array([[-0.003, 0.259], [-1.035, 0.549], [1.056, 0.549], [-0.782, 1.695], [0.805, 1.695],
                          [0.003, 2.060]])
# The fits' top edges for the rigid geometry, which reads no mouth landmark: below the nose tip (landmark 30, one
# of the stable ones) by these many inter-ocular distances: `mouth` between the nose's base and the upper lip,
# `chin` at the open-mouth lip height of RIGID_ANCHORS (1.695 - 0.549).
RIGID_CUTS = {"mouth": 0.25, "chin": 1.146}
# `high`: the top anchor rises from the nose bridge's middle to its top (landmark 27), the cheek anchors from
# nose-tip height to the height of landmark 28; the eye clearance (`below_eyes`) then sets the top edge.
RIGID_HIGH = np.array([[-0.003, -0.030], [-1.035, 0.163], [1.056, 0.163]])


def _jaw_crossing(jaw: np.ndarray, y: float) -> float:
    """x where a jaw half-polyline (ordered top to bottom) reaches height y (clamped at its ends)."""
    ys = np.maximum.accumulate(jaw[:, 1])
    return float(np.interp(y, ys, jaw[:, 0]))


def anchors(points: np.ndarray, fit: str = "nose") -> np.ndarray:
    """(6, 2) float32 anchor points from (68, 2) landmarks, in the same pixel coordinates. fit "high" raises
    the top anchor to the top of the nose bridge (27) and the upper cheek anchors to the height of 28."""
    p = points.astype(np.float64)
    eye_l, eye_r = eye_centres(p)
    angle = np.arctan2(eye_r[1] - eye_l[1], eye_r[0] - eye_l[0])
    c, s = np.cos(-angle), np.sin(-angle)
    rot = np.array([[c, -s], [s, c]])
    origin = p[30]
    q = (p - origin) @ rot.T  # level frame
    nose_y, lip_y = q[30, 1], q[57, 1]
    left, right = q[0:9], q[16:7:-1]
    top, cheek_y = ((q[27], q[28, 1]) if fit == "high" else ((q[27] + q[30]) / 2, nose_y))
    out = np.array([
        top,
        [_jaw_crossing(left, cheek_y), cheek_y], [_jaw_crossing(right, cheek_y), cheek_y],
        [_jaw_crossing(left, lip_y), lip_y], [_jaw_crossing(right, lip_y), lip_y],
        q[8],
    ])
    return (out @ rot + origin).astype(np.float32)


def fit_cut(points: np.ndarray, fit: str, geometry: str = "landmark") -> float | None:
    """How far below the eye line (in inter-ocular distances, the eye frame's y) the top edge of a mask worn
    `fit` is cut, or None where the template's own top edge (and the eye clearance) decide: `chin` just below
    the lower lip (landmark 57), `mouth` half-way between the nose's base (33) and the upper lip (51); the
    rigid geometry cuts at fixed distances below the nose tip (`RIGID_CUTS`), so that no mouth landmark moves its
    outline."""
    if fit in ("nose", "high"):
        return None
    F = eye_frame(points)
    y = points.astype(np.float64) @ F[1, :2] + F[1, 2]
    if geometry == "rigid":
        return float(y[30] + RIGID_CUTS[fit])
    return float(y[57] + 0.05) if fit == "chin" else float((y[33] + y[51]) / 2)


def eye_frame(points: np.ndarray) -> np.ndarray:
    """(2, 3) affine map from image pixels to the eye frame of (68, 2) landmarks: origin between the eye
    centres, x along the eye line, one unit per inter-ocular distance."""
    left, right = (c.astype(np.float64) for c in eye_centres(points))
    d = right - left
    iod = max(float(np.hypot(*d)), 1e-6)
    c, s = d / iod
    rot = np.array([[c, s], [-s, c]]) / iod
    return np.hstack([rot, (-rot @ ((left + right) / 2))[:, None]])


def similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """(2, 3) least-squares similarity (rotation, uniform scale, translation) taking (K, 2) src onto dst
    (Umeyama 1991)."""
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    ms, md = src.mean(0), dst.mean(0)
    a, b = src - ms, dst - md
    u, sig, vt = np.linalg.svd(b.T @ a / len(src))
    d = np.diag([1.0, np.sign(np.linalg.det(u @ vt))])
    rot = u @ d @ vt
    scale = float(np.trace(np.diag(sig) @ d) / max((a ** 2).sum() / len(src), 1e-12))
    return np.hstack([scale * rot, (md - scale * rot @ ms)[:, None]])


def rigid_anchors(points: np.ndarray, fit: str = "nose") -> np.ndarray:
    """(6, 2) float32 anchors of the rigid mask: RIGID_ANCHORS (with RIGID_HIGH's top three for fit "high")
    carried onto the face by the similarity that fits RIGID_STABLE to the face's eye corners and nose bridge.
    Mouth and jaw landmarks play no part, so an open mouth gives the same mask as a closed one."""
    S = similarity(RIGID_STABLE, points[STABLE])
    target = np.vstack([RIGID_HIGH, RIGID_ANCHORS[3:]]) if fit == "high" else RIGID_ANCHORS
    return (target @ S[:, :2].T + S[:, 2]).astype(np.float32)


def homography(points: np.ndarray, width: int, height: int, geometry: str = "landmark",
               fit: str = "nose") -> np.ndarray:
    """3x3 map from a template rendered `width` x `height` onto the face's anchors (least squares):
    `anchors` for the landmark geometry, `rigid_anchors` for the rigid one, each for the fit."""
    if geometry not in GEOMETRIES:
        raise ValueError(f"unknown mask geometry {geometry!r}; expected one of {', '.join(GEOMETRIES)}")
    target = anchors(points, fit) if geometry == "landmark" else rigid_anchors(points, fit)
    src = ANCHORS * np.array([width, height], dtype=np.float32)
    H, _ = cv2.findHomography(src, target, 0)
    if H is None or not np.isfinite(H).all():  # degenerate anchors: an affine fit still places a mask
        A, _ = cv2.estimateAffine2D(src, target)
        H = np.vstack([A, [0, 0, 1]])
    return H


def below_line(points: np.ndarray, width: int, height: int, depth: float) -> np.ndarray:
    """(height, width) float32 in 0..1: 0 above the line parallel to the eye line `depth` inter-ocular
    distances below it, rising to 1 over a soft edge a tenth of that distance wide."""
    F = eye_frame(points)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    y = F[1, 0] * xx + F[1, 1] * yy + F[1, 2]
    return np.clip((y - depth) / 0.1, 0.0, 1.0).astype(np.float32)


def below_eyes(points: np.ndarray, width: int, height: int, margin: float = EYE_MARGIN,
               eye_floor: float | None = None) -> np.ndarray:
    """(height, width) float32 in 0..1: 0 above a line parallel to the eye line, `margin` inter-ocular
    distances below the lowest eye landmark, rising to 1 over a soft edge a tenth of that distance wide.
    Multiplying a mask's alpha by it keeps every mask below the eyes, whatever its template and anchors.
    eye_floor: for landmarks no detector confirmed, the lowest image row the eyes may be on; the mask also
    stays `margin` (plus an eye's half height) below that row."""
    p = points.astype(np.float64)
    el, er = eye_centres(p)
    iod = max(float(np.hypot(*(er - el))), 1e-6)
    c, s = (er - el) / iod
    normal = np.array([-s, c])  # points down the face
    lowest = float(((p[36:48] - el) @ normal).max())
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    depth = (xx - el[0]) * normal[0] + (yy - el[1]) * normal[1] - lowest - margin * iod
    soft = max(0.1 * iod, 0.5)
    if eye_floor is not None:
        depth = np.minimum(depth, yy - eye_floor - (margin + 0.1) * iod)
    return np.clip(depth / soft, 0.0, 1.0).astype(np.float32)


def lower_face_hull(points: np.ndarray) -> np.ndarray:
    """Convex hull of the lower face (jaw 2-14 and the nose-bridge point 29), int32 (K, 1, 2)."""
    return cv2.convexHull(np.round(np.vstack([points[2:15], points[29:30]])).astype(np.int32))


def _warped(points: np.ndarray, spec: MaskSpec, w: int, h: int, gray: bool, margin: float = EYE_MARGIN,
            eye_floor: float | None = None, geometry: str = "landmark", fit: str = "nose") -> tuple[np.ndarray, np.ndarray]:
    face_w = float(np.ptp(points[:17, 0])) or float(w)
    tw = int(np.clip(2 ** np.ceil(np.log2(max(face_w, 16))), 32, 1024))  # template a little larger than the face
    tmpl, alpha = (render_gray(spec, tw) if gray else render(spec, tw))
    H = homography(points, alpha.shape[1], alpha.shape[0], geometry, fit)
    warp = dict(dsize=(w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    clamp = below_eyes(points, w, h, margin, eye_floor)
    cut = fit_cut(points, fit, geometry)
    if cut is not None:
        clamp = clamp * below_line(points, w, h, cut)
    return cv2.warpPerspective(alpha, H, **warp) * clamp, cv2.warpPerspective(tmpl, H, **warp)


def mask_alpha(points: np.ndarray, spec: MaskSpec, width: int, height: int, margin: float = EYE_MARGIN,
               eye_floor: float | None = None, geometry: str = "landmark", fit: str = "nose") -> np.ndarray:
    """(height, width) float32 in 0..1: how opaque `spec` is at each pixel when drawn on `points`."""
    return _warped(points, spec, width, height, True, margin, eye_floor, geometry, fit)[0]


def apply_flat(image: np.ndarray, points: np.ndarray, spec: MaskSpec, level: float, margin: float = EYE_MARGIN,
               eye_floor: float | None = None, geometry: str = "landmark", fit: str = "nose") -> tuple[np.ndarray, float]:
    """A flat mask: `spec`'s outline on `points` (as `apply_mask` places it, eye clearance included) filled with
    one grey `level` (0..255), nothing else. image (H, W) uint8 grey or (H, W, 3) RGB. Returns (the masked
    image, same shape and dtype; the share of the lower-face hull covered)."""
    h, w = image.shape[:2]
    a = mask_alpha(points, spec, w, h, margin, eye_floor, geometry, fit)
    img = image.astype(np.float32)
    out = img * (1 - a[..., None]) + level * a[..., None] if img.ndim == 3 else img * (1 - a) + level * a
    hull = np.zeros((h, w), np.uint8)
    cv2.fillConvexPoly(hull, lower_face_hull(points), 1)
    coverage = float(a[hull > 0].mean()) if hull.any() else 0.0
    return np.clip(out + 0.5, 0, 255).astype(np.uint8), coverage


def apply_mask(image: np.ndarray, points: np.ndarray, spec: MaskSpec, margin: float = EYE_MARGIN,
               eye_floor: float | None = None, geometry: str = "landmark", fit: str = "nose") -> tuple[np.ndarray, float]:
    """Draw `spec` on the face given by `points`.

    image: (H, W) uint8 grayscale or (H, W, 3) uint8 RGB; points: (68, 2) landmarks in its pixels;
    margin, eye_floor: see `below_eyes` (`pipeline.eye_clearance` gives them per landmark status);
    geometry: "landmark" (anchors from all 68 landmarks, jaw included: the mask follows the jaw) or "rigid"
    (`rigid_anchors`: placed by the eye corners and nose bridge only, sized for an open mouth); fit: how the
    mask is worn (`FITS`: "nose", the default, is the usual way; `fit_cut` and `anchors` say the others).
    Returns (masked image, same shape and dtype; fraction of the lower-face hull the mask covers).
    Mask brightness follows the face: a white mask in a dark photo is drawn darker, and the face's
    own low-frequency shading is carried onto the mask.
    """
    h, w = image.shape[:2]
    face_w = float(np.ptp(points[:17, 0])) or float(w)
    a, m = _warped(points, spec, w, h, image.ndim == 2, margin, eye_floor, geometry, fit)
    img = image.astype(np.float32)
    gray = img if img.ndim == 2 else img @ np.array([0.299, 0.587, 0.114], np.float32)
    hull = np.zeros((h, w), np.uint8)
    cv2.fillConvexPoly(hull, lower_face_hull(points), 1)
    covered = a > 0.5
    region = covered if covered.any() else np.ones_like(covered)
    face_mean = float(gray[region].mean())
    gain = np.clip((max(face_mean, 8.0) / 140.0) ** 0.6, 0.35, 1.15)
    sigma = max(1.0, 0.08 * face_w)
    local = cv2.GaussianBlur(gray, (0, 0), sigma)
    shading = np.clip(local / max(face_mean, 1.0), 0.7, 1.3) ** 0.5
    if img.ndim == 3:
        a, shading = a[..., None], shading[..., None]
    out = img * (1 - a) + np.clip(m * gain * shading, 0, 255) * a
    a2 = a if a.ndim == 2 else a[..., 0]
    coverage = float(a2[hull > 0].mean()) if hull.any() else 0.0
    return np.clip(out + 0.5, 0, 255).astype(np.uint8), coverage
