"""dlib 68-point landmarks for FER crops and ordinary photos, with a status for every face.

Models come from the `face_recognition_models` package; nothing is downloaded. FER2013 rows are
already tight 48x48 face crops, too small for the HOG detector's 80x80 window, so they are upscaled
first. When the detector finds nothing, the shape predictor runs on the whole frame as the face box
(`fallback`); when even that geometry is implausible (a blank or noise image, say), a canonical
landmark set is placed in the frame (`canonical`). No row is ever dropped.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import dlib
import face_recognition_models
import numpy as np

STATUSES = ("detected", "fallback", "canonical")
LEFT_EYE, RIGHT_EYE = slice(36, 42), slice(42, 48)


@dataclass(frozen=True)
class LandmarkConfig:
    """upscale: FER crops are resized to `upscale` x `upscale` pixels before detection.
    detector_upsample: dlib pyramid up-sampling passes for FER crops (0 keeps it fast).
    photo_upsample: up-sampling passes for ordinary photos (finds faces down to ~40 px).
    min_std: a crop with a pixel standard deviation below this is treated as blank (canonical)."""

    upscale: int = 96
    detector_upsample: int = 0
    photo_upsample: int = 1
    min_std: float = 4.0


class LandmarkFinder:
    """Finds 68 landmarks. Not picklable (dlib objects): build one per process."""

    def __init__(self, config: LandmarkConfig = LandmarkConfig()):
        self.config = config
        self.detector = dlib.get_frontal_face_detector()
        self.predictor = dlib.shape_predictor(face_recognition_models.pose_predictor_model_location())
        # The predictor's answer on an image with no features is its mean shape placed in the box:
        # that is the canonical placement, in unit-box coordinates.
        side = 200
        blank = np.full((side, side), 128, dtype=np.uint8)
        self._unit_shape = self._predict(blank, dlib.rectangle(0, 0, side - 1, side - 1)) / side

    def _predict(self, image: np.ndarray, rect: dlib.rectangle) -> np.ndarray:
        shape = self.predictor(image, rect)
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)

    def canonical(self, width: int, height: int) -> np.ndarray:
        """(68, 2) float32 landmarks of an average face filling a width x height frame."""
        return self._unit_shape * np.array([width, height], dtype=np.float32)

    def crop_landmarks(self, image: np.ndarray, detect: bool = True) -> tuple[np.ndarray, str]:
        """Landmarks of a face crop (FER row).

        image: (H, W) uint8 grayscale. Returns ((68, 2) float32 in image pixels, status).
        With detect=False the detector is skipped and the fallback geometry is returned.
        """
        h, w = image.shape[:2]
        if float(image.std()) < self.config.min_std:
            return self.canonical(w, h), "canonical"
        s = self.config.upscale
        big = cv2.resize(image, (s, s), interpolation=cv2.INTER_LINEAR)
        scale = np.array([w / s, h / s], dtype=np.float32)
        if detect:
            rects = self.detector(big, self.config.detector_upsample)
            if len(rects):
                rect = max(rects, key=lambda r: r.area())
                return self._predict(big, rect) * scale, "detected"
        points = self._predict(big, dlib.rectangle(0, 0, s - 1, s - 1)) * scale
        if not plausible(points, w, h):
            return self.canonical(w, h), "canonical"
        return points, "fallback"

    def photo_landmarks(self, image: np.ndarray) -> list[tuple[np.ndarray, tuple[int, int, int, int]]]:
        """Every face in an ordinary photo: [((68, 2) float32 landmarks, (x, y, w, h) box), ...].

        image: (H, W) or (H, W, 3) uint8 (RGB). Large images are searched at <= 1024 px on the long side.
        """
        gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        f = min(1.0, 1024 / max(gray.shape))
        small = cv2.resize(gray, None, fx=f, fy=f, interpolation=cv2.INTER_AREA) if f < 1 else gray
        faces = []
        for r in self.detector(small, self.config.photo_upsample):
            rect = dlib.rectangle(int(r.left() / f), int(r.top() / f), int(r.right() / f), int(r.bottom() / f))
            box = (rect.left(), rect.top(), rect.width(), rect.height())
            faces.append((self._predict(gray, rect), box))
        return faces


def plausible(points: np.ndarray, width: int, height: int) -> bool:
    """Whether 68 landmarks describe a face that fits the frame: eyes apart, mouth below the eyes."""
    eyes = points[LEFT_EYE].mean(0), points[RIGHT_EYE].mean(0)
    iod = float(np.linalg.norm(eyes[1] - eyes[0]))
    mouth_y = points[48:68, 1].mean()
    inside = (points[:, 0] > -0.25 * width).all() and (points[:, 0] < 1.25 * width).all() \
        and (points[:, 1] > -0.25 * height).all() and (points[:, 1] < 1.25 * height).all()
    return bool(inside and 0.15 * width < iod < 0.8 * width and mouth_y > max(eyes[0][1], eyes[1][1]))


def interocular(points: np.ndarray) -> float:
    """Distance between the eye centres, the usual normaliser for landmark error."""
    return float(np.linalg.norm(points[RIGHT_EYE].mean(0) - points[LEFT_EYE].mean(0)))
