"""maskfer's own mask templates, drawn by code: surgical, N95, KN95 and cloth, in colours and textures.

A template lives in a unit frame (x, y in 0..1 across the mask's bounding box). Six anchor points
tie that frame to the face (see `placement.anchors`): the nose-bridge midpoint, both cheeks at
nose-tip height, both cheeks at bottom-lip height, and the chin. Templates are rendered at whatever
resolution the target needs, with soft (blurred) edges.
"""
from __future__ import annotations

from dataclasses import dataclass
import zlib
from functools import lru_cache

import cv2
import numpy as np

MASK_TYPES = ("surgical", "n95", "kn95", "cloth")
TEXTURES = ("none", "stripes", "checks", "dots", "noise")
COLORS = {  # RGB
    "blue": (158, 198, 226), "white": (236, 236, 232), "gray": (150, 152, 156), "black": (38, 38, 42),
    "navy": (40, 52, 92), "pink": (232, 170, 190), "green": (120, 160, 120), "beige": (214, 196, 170),
}
DEFAULT_COLOR = {"surgical": "blue", "n95": "white", "kn95": "white", "cloth": "navy"}
DEFAULT_TEXTURE = {"surgical": "none", "n95": "none", "kn95": "none", "cloth": "noise"}

# Unit-frame anchors: nose bridge, left/right cheek at nose tip, left/right cheek at bottom lip, chin.
ANCHORS = np.array([[0.5, 0.0], [0.0, 0.30], [1.0, 0.30], [0.05, 0.70], [0.95, 0.70], [0.5, 0.93]],
                   dtype=np.float32)


@dataclass(frozen=True)
class MaskSpec:
    """One concrete mask: type, colour name and texture name."""

    mask_type: str = "surgical"
    color: str = ""
    texture: str = ""
    rgb: tuple[int, int, int] | None = None  # a drawn colour (random appearance): replaces the named one
    softness: float = 1.0                    # the edge's blur, as a multiple of the usual

    def resolved(self) -> "MaskSpec":
        if self.mask_type not in MASK_TYPES:
            raise ValueError(f"unknown mask type {self.mask_type!r}; expected one of {', '.join(MASK_TYPES)}")
        color = self.color or DEFAULT_COLOR[self.mask_type]
        texture = self.texture or DEFAULT_TEXTURE[self.mask_type]
        if color not in COLORS:
            raise ValueError(f"unknown mask colour {color!r}; expected one of {', '.join(COLORS)}")
        if texture not in TEXTURES:
            raise ValueError(f"unknown mask texture {texture!r}; expected one of {', '.join(TEXTURES)}")
        return MaskSpec(self.mask_type, color, texture, self.rgb, self.softness)


def _outline(mask_type: str) -> np.ndarray:
    """Closed outline in the unit frame: top edge rises to the nose bridge, sides follow the jaw."""
    t = np.linspace(0, 1, 24)
    if mask_type == "kn95":  # folded: pointed at the nose and at the chin
        top = np.stack([t, 0.30 - 0.31 * (1 - np.abs(2 * t - 1))], 1)
        bottom = np.stack([1 - t, 0.66 + 0.36 * (1 - np.abs(2 * (1 - t) - 1)) ** 1.2], 1)
    elif mask_type == "n95":  # moulded cup: round all round
        top = np.stack([t, 0.30 - 0.32 * np.sin(np.pi * t) ** 0.8], 1)
        bottom = np.stack([1 - t, 0.62 + 0.40 * np.sin(np.pi * (1 - t)) ** 0.9], 1)
    else:  # surgical and cloth: flatter bottom, straighter sides
        top = np.stack([t, 0.30 - 0.31 * np.sin(np.pi * t) ** 0.7], 1)
        bottom = np.stack([1 - t, 0.72 + 0.28 * np.sin(np.pi * (1 - t)) ** 0.5], 1)
    return np.concatenate([top, bottom]).astype(np.float32)


def _texture(name: str, h: int, w: int, seed: int) -> np.ndarray:
    """(h, w) float32 multiplicative pattern around 1."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32) / max(w, 1)
    if name == "stripes":
        return 1 + 0.22 * np.sign(np.sin(2 * np.pi * 9 * (x + y)))
    if name == "checks":
        return 1 + 0.2 * np.sign(np.sin(2 * np.pi * 6 * x) * np.sin(2 * np.pi * 6 * y))
    if name == "dots":
        gx, gy = (x * 10) % 1 - 0.5, (y * 10) % 1 - 0.5
        return 1 - 0.35 * (gx ** 2 + gy ** 2 < 0.06)
    if name == "noise":
        n = np.random.default_rng(seed).normal(0, 1, (max(h // 3, 2), max(w // 3, 2))).astype(np.float32)
        return 1 + 0.12 * cv2.resize(n, (w, h), interpolation=cv2.INTER_CUBIC)
    return np.ones((h, w), np.float32)


@lru_cache(maxsize=128)
def render(spec: MaskSpec, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Render a template `width` pixels wide.

    Returns (rgb, alpha): rgb (H, W, 3) float32 in 0..255 and alpha (H, W) float32 in 0..1, where
    H = round(0.8 * width) and the unit frame maps to [0, W] x [0, H]. Cached per (spec, width).
    """
    spec = spec.resolved()
    w, h = int(width), int(round(0.8 * width))
    outline = _outline(spec.mask_type) * np.array([w, h], dtype=np.float32)
    alpha = np.zeros((h, w), np.float32)
    cv2.fillPoly(alpha, [np.round(outline * 16).astype(np.int32)], 1.0, cv2.LINE_AA, shift=4)
    soft = max(0.6, 0.012 * w) * spec.softness  # soft edge, not a hard cut-out
    alpha = cv2.GaussianBlur(alpha, (0, 0), soft)
    shade = np.ones((h, w), np.float32)
    ys = np.linspace(0, 1, h, dtype=np.float32)[:, None]
    xs = np.linspace(-1, 1, w, dtype=np.float32)[None, :]
    shade *= 1.04 - 0.10 * ys - 0.10 * xs ** 2  # a rounded object lit from above
    lines = np.zeros((h, w), np.float32)
    thick = max(1, w // 80)
    if spec.mask_type == "surgical":  # pleats
        for yy in (0.38, 0.52, 0.66):
            cv2.line(lines, (0, int(yy * h)), (w, int(yy * h)), 0.18, thick, cv2.LINE_AA)
    elif spec.mask_type == "kn95":  # centre fold
        cv2.line(lines, (w // 2, 0), (w // 2, h), 0.22, thick, cv2.LINE_AA)
    elif spec.mask_type == "n95":  # moulded seam and strap shadow
        cv2.ellipse(lines, (w // 2, int(0.62 * h)), (int(0.36 * w), int(0.30 * h)), 0, 200, 340, 0.15, thick,
                    cv2.LINE_AA)
    else:  # cloth: stitched border
        inner = (outline - [w / 2, h / 2]) * 0.9 + [w / 2, h / 2]
        cv2.polylines(lines, [np.round(inner).astype(np.int32)], True, 0.14, thick, cv2.LINE_AA)
    pattern = _texture(spec.texture, h, w, seed=zlib.crc32(f"{spec.mask_type}/{spec.color}".encode()))
    rgb = np.asarray(spec.rgb or COLORS[spec.color], np.float32)[None, None, :] * (shade * pattern * (1 - lines))[..., None]
    return np.clip(rgb, 0, 255), alpha


def render_gray(spec: MaskSpec, width: int) -> tuple[np.ndarray, np.ndarray]:
    """`render` in grayscale (ITU-R 601 luma): ((H, W) float32 0..255, (H, W) float32 alpha)."""
    rgb, alpha = render(spec, width)
    return rgb @ np.array([0.299, 0.587, 0.114], np.float32), alpha
