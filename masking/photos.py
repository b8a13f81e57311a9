"""Masking ordinary photos, chunk by chunk in an engine's workers (`python -m masking images`): every face dlib
finds gets a mask; the masked photo comes back encoded in its own format."""
from __future__ import annotations

from pathlib import Path

import cv2

from datasets.photos import load_rgb

from .landmarks import STATUSES
from .pipeline import draw_mask, landmark_finder

CHUNK_PHOTOS = 16  # photos per task
DETECTED = STATUSES.index("detected")


def mask_photo_chunk(task) -> list[tuple[str, bytes | None, str]]:
    """(name, the masked photo encoded in its own format or None, "masked N" | "no face" | "unreadable") per
    photo of a chunk. task: ([PhotoRef], MaskConfig, index of the chunk's first photo: the masks' seeds). Runs in
    an engine's worker, which gets the photos' bytes (or URIs), never the driver's paths."""
    refs, cfg, first = task
    finder = landmark_finder(cfg.landmarks)
    out = []
    for k, ref in enumerate(refs, first):
        rgb = load_rgb(ref)
        if rgb is None:
            out.append((ref.name, None, "unreadable"))
            continue
        faces = finder.photo_landmarks(rgb)
        masked = rgb
        for j, (points, _) in enumerate(faces):
            masked = draw_mask(masked, points, DETECTED, k * 1000 + j, cfg)[0]  # dlib found it: detected
        ok, buf = cv2.imencode(Path(ref.name).suffix or ".png", cv2.cvtColor(masked, cv2.COLOR_RGB2BGR))
        out.append((ref.name, buf.tobytes() if faces and ok else None, f"masked {len(faces)}" if faces else "no face"))
    return out
