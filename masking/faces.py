"""Photos -> FER2013-style face crops: find the face, level the eyes, frame it the way FER2013 rows are
framed, 48x48 grayscale. Used by `experiments.predict` and by the cross-dataset test sets, so both see
faces exactly as the models were trained on them."""
from __future__ import annotations

import cv2
import numpy as np

from datasets import SIDE

from .landmarks import LandmarkFinder, eye_centres

CROP_MAX_SIDE = 64  # images this small are already face crops (FER2013, LFW thumbnails): resized, not searched


def align_crop(gray: np.ndarray, points: np.ndarray, size: int = SIDE, margin: float = 1.9) -> np.ndarray:
    """A size x size uint8 crop, eyes level, framed like a FER2013 row (face fills most of the frame).

    gray (H, W) uint8; points (68, 2) landmarks. The crop side is `margin` x 1.35 x the eye-to-mouth
    span (distance from the eye centres' midpoint to the mouth centre), at least 8 pixels."""
    eye_l, eye_r = eye_centres(points)
    angle = np.degrees(np.arctan2(eye_r[1] - eye_l[1], eye_r[0] - eye_l[0]))
    eyes, mouth = (eye_l + eye_r) / 2, points[48:68].mean(0)
    center = eyes + 0.45 * (mouth - eyes)
    side = max(margin * float(np.linalg.norm(mouth - eyes)) * 1.35, 8.0)
    M = cv2.getRotationMatrix2D((float(center[0]), float(center[1])), float(angle), size / side)
    M[:, 2] += np.array([size / 2, size / 2]) - center
    return cv2.warpAffine(gray, M, (size, size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)


def _centre_square(gray: np.ndarray, size: int) -> np.ndarray:
    h, w = gray.shape
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    interp = cv2.INTER_AREA if s > size else cv2.INTER_LINEAR
    return cv2.resize(gray[top:top + s, left:left + s], (size, size), interpolation=interp)


def face_crop(image: np.ndarray, finder: LandmarkFinder, size: int = SIDE) -> tuple[np.ndarray, str]:
    """The image's face as a (size, size) uint8 FER-style crop, and how it was obtained (`datasets.prepared.FACE_STATUSES`).

    image: (H, W) grayscale or (H, W, 3) RGB uint8. Small images (<= CROP_MAX_SIDE px) are taken as face
    crops already (`crop`); otherwise the largest face dlib finds is aligned (`face`); with no face, the
    centre square is used and the image kept (`no_face`)."""
    gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    if max(gray.shape) <= CROP_MAX_SIDE:
        return _centre_square(gray, size), "crop"
    faces = finder.photo_landmarks(gray)
    if not faces:
        return _centre_square(gray, size), "no_face"
    points, _ = max(faces, key=lambda f: f[1][2] * f[1][3])
    return align_crop(gray, points, size), "face"
