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

from .templates import ANCHORS, MaskSpec, render, render_gray


def _jaw_crossing(jaw: np.ndarray, y: float) -> float:
    """x where a jaw half-polyline (ordered top to bottom) reaches height y (clamped at its ends)."""
    ys = np.maximum.accumulate(jaw[:, 1])
    return float(np.interp(y, ys, jaw[:, 0]))


def anchors(points: np.ndarray) -> np.ndarray:
    """(6, 2) float32 anchor points from (68, 2) landmarks, in the same pixel coordinates."""
    p = points.astype(np.float64)
    eye_l, eye_r = p[36:42].mean(0), p[42:48].mean(0)
    angle = np.arctan2(eye_r[1] - eye_l[1], eye_r[0] - eye_l[0])
    c, s = np.cos(-angle), np.sin(-angle)
    rot = np.array([[c, -s], [s, c]])
    origin = p[30]
    q = (p - origin) @ rot.T  # level frame
    nose_y, lip_y = q[30, 1], q[57, 1]
    left, right = q[0:9], q[16:7:-1]
    out = np.array([
        (q[27] + q[30]) / 2,
        [_jaw_crossing(left, nose_y), nose_y], [_jaw_crossing(right, nose_y), nose_y],
        [_jaw_crossing(left, lip_y), lip_y], [_jaw_crossing(right, lip_y), lip_y],
        q[8],
    ])
    return (out @ rot + origin).astype(np.float32)


def homography(points: np.ndarray, width: int, height: int) -> np.ndarray:
    """3x3 map from a template rendered `width` x `height` onto the face's anchors (least squares)."""
    src = ANCHORS * np.array([width, height], dtype=np.float32)
    H, _ = cv2.findHomography(src, anchors(points), 0)
    if H is None or not np.isfinite(H).all():  # degenerate anchors: an affine fit still places a mask
        A, _ = cv2.estimateAffine2D(src, anchors(points))
        H = np.vstack([A, [0, 0, 1]])
    return H


def lower_face_hull(points: np.ndarray) -> np.ndarray:
    """Convex hull of the lower face (jaw 2-14 and the nose-bridge point 29), int32 (K, 1, 2)."""
    return cv2.convexHull(np.round(np.vstack([points[2:15], points[29:30]])).astype(np.int32))


def apply_mask(image: np.ndarray, points: np.ndarray, spec: MaskSpec) -> tuple[np.ndarray, float]:
    """Draw `spec` on the face given by `points`.

    image: (H, W) uint8 grayscale or (H, W, 3) uint8 RGB; points: (68, 2) landmarks in its pixels.
    Returns (masked image, same shape and dtype; fraction of the lower-face hull the mask covers).
    Mask brightness follows the face: a white mask in a dark photo is drawn darker, and the face's
    own low-frequency shading is carried onto the mask.
    """
    h, w = image.shape[:2]
    face_w = float(np.ptp(points[:17, 0])) or float(w)
    tw = int(np.clip(2 ** np.ceil(np.log2(max(face_w, 16))), 32, 1024))  # template a little larger than the face
    tmpl, alpha = (render_gray(spec, tw) if image.ndim == 2 else render(spec, tw))
    H = homography(points, alpha.shape[1], alpha.shape[0])
    warp = dict(dsize=(w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    a = cv2.warpPerspective(alpha, H, **warp)
    m = cv2.warpPerspective(tmpl, H, **warp)
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
