"""Photos -> FER2013-style face crops: find the face with dlib, level the eyes, frame it the way FER2013 rows
are framed, 48x48 grayscale. Used by `datasets prepare`, by the cross-dataset test sets and by
`experiments.predict`, so all of them see faces exactly as the models were trained on them; `masking`
builds its landmark finder for FER crops on `FaceFinder`.

dlib's models come from the `face_recognition_models` package; nothing is downloaded.
"""
from __future__ import annotations

import cv2
import numpy as np

from .engine import Engine, map_chunks
from .fer2013 import SIDE
from .photos import load_rgb, local_ref
from .prepared import FACE_STATUSES

CROP_MAX_SIDE = 64  # images this small are already face crops (FER2013, LFW thumbnails): resized, not searched
LEFT_EYE, RIGHT_EYE = slice(36, 42), slice(42, 48)


class FaceFinder:
    """dlib's HOG face detector and 68-point shape predictor for ordinary photos. Not picklable (dlib
    objects): build one per process. photo_upsample: the detector's up-sampling passes (1 finds faces down
    to ~40 px)."""

    def __init__(self, photo_upsample: int = 1):
        import dlib  # here, not at the top: `python -m datasets info` must start fast
        import face_recognition_models
        self._dlib = dlib
        self.photo_upsample = photo_upsample
        self.detector = dlib.get_frontal_face_detector()
        self.predictor = dlib.shape_predictor(face_recognition_models.pose_predictor_model_location())

    def _predict(self, image: np.ndarray, rect) -> np.ndarray:
        shape = self.predictor(image, rect)
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)

    def photo_landmarks(self, image: np.ndarray) -> list[tuple[np.ndarray, tuple[int, int, int, int]]]:
        """Every face in an ordinary photo: [((68, 2) float32 landmarks, (x, y, w, h) box), ...].

        image: (H, W) or (H, W, 3) uint8 (RGB). Large images are searched at <= 1024 px on the long side.
        """
        gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        f = min(1.0, 1024 / max(gray.shape))
        small = cv2.resize(gray, None, fx=f, fy=f, interpolation=cv2.INTER_AREA) if f < 1 else gray
        faces = []
        for r in self.detector(small, self.photo_upsample):
            rect = self._dlib.rectangle(int(r.left() / f), int(r.top() / f), int(r.right() / f), int(r.bottom() / f))
            box = (rect.left(), rect.top(), rect.width(), rect.height())
            faces.append((self._predict(gray, rect), box))
        return faces


def eye_centres(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The (image-)left and right eye centres, the means of landmarks 36-41 and 42-47.
    points (..., 68, 2) -> two (..., 2) arrays of its dtype."""
    return points[..., LEFT_EYE, :].mean(-2), points[..., RIGHT_EYE, :].mean(-2)


def interocular(points: np.ndarray) -> float:
    """Distance between the eye centres of (68, 2) landmarks, the usual normaliser for landmark error."""
    left, right = eye_centres(points)
    return float(np.linalg.norm(right - left))


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


def face_crop(image: np.ndarray, finder: FaceFinder, size: int = SIDE) -> tuple[np.ndarray, str]:
    """The image's face as a (size, size) uint8 FER-style crop, and how it was obtained (FACE_STATUSES).

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


# ------------------------------------------------------------------ many files, on an engine

_FINDERS: dict[int, FaceFinder] = {}


def _init_finder(upsample: int) -> None:
    if upsample not in _FINDERS:
        _FINDERS[upsample] = FaceFinder(upsample)


def crop_chunk(task) -> tuple[np.ndarray, np.ndarray]:
    """Face crops of a chunk of photos, in a worker. task: ([PhotoRef, ...], photo_upsample). Returns
    ((n, 48, 48) uint8, (n,) uint8 status into FACE_STATUSES, len(FACE_STATUSES) for an unreadable photo)."""
    refs, upsample = task
    _init_finder(upsample)
    finder = _FINDERS[upsample]
    images = np.zeros((len(refs), SIDE, SIDE), np.uint8)
    status = np.empty(len(refs), np.uint8)
    for i, ref in enumerate(refs):
        rgb = load_rgb(ref)
        if rgb is None:
            status[i] = len(FACE_STATUSES)  # unreadable
            continue
        images[i], st = face_crop(rgb, finder)
        status[i] = FACE_STATUSES.index(st)
    return images, status


def crop_files(paths: list, workers: int | None = None, engine: Engine | None = None,
               photo_upsample: int = 1, chunk: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """FER-style face crops of image files on this machine (`face_crop`), on an engine (default: `workers`
    local processes); the files are read here and their bytes sent to the workers.

    Returns ((N, 48, 48) uint8, (N,) uint8 status into FACE_STATUSES, or len(FACE_STATUSES) for a file that
    neither OpenCV nor Pillow can read)."""
    names = [str(p) for p in paths]
    tasks = (([local_ref(p) for p in names[i:i + chunk]], photo_upsample) for i in range(0, len(names), chunk))
    parts = map_chunks(crop_chunk, tasks, lambda r: len(r[1]), engine or Engine("local", workers or 0), "faces",
                       total=len(names))
    if not parts:
        return np.empty((0, SIDE, SIDE), np.uint8), np.empty(0, np.uint8)
    return np.concatenate([p for p, _ in parts]), np.concatenate([s for _, s in parts])
