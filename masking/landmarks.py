"""dlib 68-point landmarks for FER crops and ordinary photos, with a status for every face.

Models come from the `face_recognition_models` package; nothing is downloaded. FER2013 rows are tight
48x48 face crops, too small for the HOG detector's 80x80 window, so they are upscaled first. Per row:

1. `detected`      dlib's HOG detector finds the face on the upscaled crop;
2. `detected_weak` HOG's best window scores below its usual threshold (0) but above `cnn_skip_score`, or
                   the CNN detector also misses and it scores above `weak_threshold`: its box still gives far
                   better landmarks than a fixed box;
3. `detected_cnn`  HOG has no window above `cnn_skip_score`, dlib's CNN (MMOD) detector finds the face
                   (slower; finds dark, tilted, blurred faces);
4. `fallback`      no detector finds it: the predictor runs in FER2013's typical face box;
5. `mean_shape`    the landmarks of 1-4 fail `plausible` (wrong order, size or shape): the mean face in
                   FER2013's framing, with the eyes at the low end of where FER2013 puts them, so a mask
                   drawn from it cannot reach the eyes;
6. `blank`         the crop has no features (near-constant pixels): the same mean face.

No row is ever dropped. The framing constants below were measured on FER2013's 25,119 HOG-detected rows
(BENCHMARKS.md, section 2b).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import dlib
import face_recognition_models
import numpy as np

from datasets.faces import FaceFinder, eye_centres, interocular

STATUSES = ("detected", "detected_cnn", "detected_weak", "fallback", "mean_shape", "blank")

# FER2013's framing, as fractions of the crop side, from its HOG-detected rows:
FER_BOX = (0.0625, 0.167, 0.969, 0.969)      # median HOG face box (left, top, right, bottom)
FER_EYES = ((0.311, 0.383), (0.674, 0.381))  # mean eye centres
FER_CHIN = (0.500, 0.998)                    # mean chin (landmark 8)
FER_LOW_EYE_Y = 0.50                         # eyes this low or higher on 99% of rows (mean_shape uses it)
# Ranges on the same rows (0.1th to 99.9th percentile), fractions of the side unless said otherwise:
IOD_RANGE = (0.19, 0.58)                     # inter-ocular distance
FACE_WIDTH_RANGE = (0.52, 1.09)              # jaw span, landmark 0 to 16
EYE_Y_RANGE = (0.13, 0.58)                   # height of the eye line
MAX_TILT_DEG = 60.0                          # eye line against the horizontal (the CNN finds faces lying down)
MAX_RESIDUAL = 0.45                          # RMS residual of a similarity fit to the predictor's mean shape, in IODs


@dataclass(frozen=True)
class LandmarkConfig:
    """upscale: FER crops are resized to `upscale` x `upscale` pixels before HOG detection.
    detector_upsample: dlib pyramid up-sampling passes for FER crops (0 keeps it fast).
    cnn_size: side the crop is resized to for the CNN detector on HOG misses (0 turns it off; its cost
    grows with the square of this: about 40 ms a row at 80 and 60 ms at 96 on one core).
    weak_threshold: HOG score (its own threshold is 0) above which a window still counts as `detected_weak`.
    cnn_skip_score: a best HOG window scoring at least this (and below 0) is taken as `detected_weak` at
    once, without asking the CNN detector (0: always ask it first).
    photo_upsample: up-sampling passes for ordinary photos (finds faces down to ~40 px).
    min_std: a crop with a pixel standard deviation below this is blank."""

    upscale: int = 96
    detector_upsample: int = 0
    cnn_size: int = 96
    weak_threshold: float = -1.0
    cnn_skip_score: float = -0.5
    photo_upsample: int = 1
    min_std: float = 4.0


def _unit_affine(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    return cv2.getAffineTransform(src.astype(np.float32), dst.astype(np.float32))


class LandmarkFinder(FaceFinder):
    """Finds 68 landmarks on FER crops (`crop_landmarks`, with a status) and in photos (`photo_landmarks`,
    `datasets.faces.FaceFinder`'s). Not picklable (dlib objects): build one per process."""

    def __init__(self, config: LandmarkConfig = LandmarkConfig()):
        super().__init__(config.photo_upsample)
        self.config = config
        self.cnn = (dlib.cnn_face_detection_model_v1(face_recognition_models.cnn_face_detector_model_location())
                    if config.cnn_size else None)
        # The predictor's answer on an image with no features is its mean shape placed in the box.
        side = 200
        blank = np.full((side, side), 128, dtype=np.uint8)
        unit = self._predict(blank, dlib.rectangle(0, 0, side - 1, side - 1)) / side
        self._mean_unit = unit
        # ... and the same shape moved onto FER2013's mean eyes and chin, then the conservative variant.
        src = np.array([*eye_centres(unit), unit[8]])
        fer = _apply(unit, _unit_affine(src, np.array([*FER_EYES, FER_CHIN])))
        low = np.array([[FER_EYES[0][0], FER_LOW_EYE_Y], [FER_EYES[1][0], FER_LOW_EYE_Y], FER_CHIN])
        self._fer_unit = fer
        self._fer_low_unit = _apply(unit, _unit_affine(src, low))

    def mean_shape(self, width: int, height: int) -> np.ndarray:
        """(68, 2) float32: the mean face in FER2013's framing with its eyes low (mean_shape and blank rows)."""
        return self._fer_low_unit * np.array([width, height], dtype=np.float32)

    def crop_landmarks(self, image: np.ndarray, detect: bool = True) -> tuple[np.ndarray, str]:
        """Landmarks of a face crop (FER row).

        image: (H, W) uint8 grayscale. Returns ((68, 2) float32 in image pixels, status in STATUSES).
        With detect=False both detectors are skipped (the `fallback` path, then the plausibility check).
        """
        h, w = image.shape[:2]
        if float(image.std()) < self.config.min_std:
            return self.mean_shape(w, h), "blank"
        points, status = None, "fallback"
        s = self.config.upscale
        big = cv2.resize(image, (s, s), interpolation=cv2.INTER_LINEAR)
        scale = np.array([w / s, h / s], dtype=np.float32)
        if detect:
            rects, scores, _ = self.detector.run(big, self.config.detector_upsample, self.config.weak_threshold)
            best = int(np.argmax(scores)) if len(rects) else -1
            if best >= 0 and scores[best] >= 0:
                rect = max((r for r, sc in zip(rects, scores) if sc >= 0), key=lambda r: r.area())
                points, status = self._predict(big, rect) * scale, "detected"
            elif best >= 0 and scores[best] >= self.config.cnn_skip_score:
                points, status = self._predict(big, rects[best]) * scale, "detected_weak"
            elif self.cnn is not None:
                c = self.config.cnn_size
                found = self.cnn(cv2.resize(image, (c, c), interpolation=cv2.INTER_LINEAR), 0)
                if len(found):
                    r = max(found, key=lambda d: d.confidence).rect
                    k = s / c  # predict on the HOG-size crop, the box scaled to it
                    rect = dlib.rectangle(round(r.left() * k), round(r.top() * k), round(r.right() * k),
                                          round(r.bottom() * k))
                    points, status = self._predict(big, rect) * scale, "detected_cnn"
            if points is None and best >= 0:
                points, status = self._predict(big, rects[best]) * scale, "detected_weak"
        if points is None:
            box = np.array(FER_BOX) * s
            rect = dlib.rectangle(*(int(v + 0.5) for v in box))
            points = self._predict(big, rect) * scale
        if not plausible(points, w, h, self._mean_unit):
            return self.mean_shape(w, h), "mean_shape"
        return points, status

    def plausible(self, points: np.ndarray, width: int, height: int) -> bool:
        """`plausible` against this predictor's mean shape."""
        return plausible(points, width, height, self._mean_unit)


def _apply(points: np.ndarray, affine: np.ndarray) -> np.ndarray:
    return (points @ affine[:, :2].T + affine[:, 2]).astype(np.float32)


def shape_residual(points: np.ndarray, reference: np.ndarray) -> float:
    """RMS residual of the best similarity fit (rotation, scale, shift) of `reference` onto `points`,
    divided by the inter-ocular distance of `points`."""
    p = points.astype(np.float64) - points.mean(0)
    r = reference.astype(np.float64) - reference.mean(0)
    a = (r * p).sum() / max((r * r).sum(), 1e-12)
    b = (r[:, 0] * p[:, 1] - r[:, 1] * p[:, 0]).sum() / max((r * r).sum(), 1e-12)
    fit = np.stack([a * r[:, 0] - b * r[:, 1], b * r[:, 0] + a * r[:, 1]], 1)
    rms = float(np.sqrt(((fit - p) ** 2).sum(1).mean()))
    return rms / max(interocular(points), 1e-6)


def plausible(points: np.ndarray, width: int, height: int, reference: np.ndarray) -> bool:
    """Whether 68 landmarks can be trusted to place a mask on a `width` x `height` face crop.

    points: (68, 2) landmarks in pixels; reference: (68, 2) mean shape (any scale, e.g. the predictor's).

    Checks, with ranges measured on FER2013's detected rows: the eyes level enough and in order, above the
    nose tip, above the mouth, above the chin; the inter-ocular distance, the jaw span and the eye line's
    height within range; the shape close to the mean shape after a similarity fit.
    """
    p = points.astype(np.float64)
    el, er = eye_centres(p)
    d = er - el
    iod = float(np.hypot(*d))
    if iod <= 0 or d[0] <= 0 or abs(np.degrees(np.arctan2(d[1], d[0]))) > MAX_TILT_DEG:
        return False
    c, s = d / iod
    level = (p - (el + er) / 2) @ np.array([[c, -s], [s, c]])  # eye line horizontal, origin between the eyes
    nose, mouth, chin = level[30, 1], level[48:68, 1].mean(), level[8, 1]
    if not (0 < nose < mouth < chin):
        return False
    side = float(min(width, height))
    eye_y = float((el[1] + er[1]) / 2) / height
    span = float(np.hypot(*(p[16] - p[0]))) / side
    if not (IOD_RANGE[0] <= iod / side <= IOD_RANGE[1] and FACE_WIDTH_RANGE[0] <= span <= FACE_WIDTH_RANGE[1]
            and EYE_Y_RANGE[0] <= eye_y <= EYE_Y_RANGE[1]):
        return False
    return shape_residual(p, reference) <= MAX_RESIDUAL
