"""A third mask generator for the held-out check, written apart from maskfer and never used by it.

It imports nothing of maskfer (no landmarks, no placement, no clearance, no templates, no surface): dlib's HOG
detector on 4x upscaled rows finds the face or the row is dropped (as MaskTheFace does: no fallback), dlib's
predictor gives 68 points, a per-type outline is cut from them, and the mask's cloth is a crop of a *photographed*
texture shipped by scikit-image (brick, grass, gravel, moon, coins, cell, cat fur, coffee, printed pages, a
camera-man), randomly scaled, turned and brightened, composited by OpenCV's Poisson blending (seamlessClone). So it
differs from both maskfer families in geometry code, appearance and compositing. It is a proxy for the outside
generator of issue 37, which is not here; it was written for the check and did not steer any training choice.

    python benchmarks/outside_masks.py RUN_DIR [--data FER2013] [--out masks.npz]

scores RUN_DIR's models on the rows it finds faces on: clean, maskfer's `masked:<type>` and this generator's
masks of the same type (one type for all rows at a time), and prints the table of BENCHMARKS section 16.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import dlib
import face_recognition_models
import numpy as np
import skimage.data

SCRIPT_VERSION = 1  # in its --out cache key: bump it when the drawing below changes
TYPES = ("surgical", "n95", "kn95", "cloth")
UP = 4  # rows are upscaled to 192 px before detection and drawing


def _textures() -> list[np.ndarray]:
    out = []
    for name in ("brick", "grass", "gravel", "moon", "coins", "cell", "camera", "text", "page"):
        out.append(getattr(skimage.data, name)())
    for name in ("chelsea", "coffee"):
        out.append(cv2.cvtColor(getattr(skimage.data, name)(), cv2.COLOR_RGB2GRAY))
    return out


def _outline(p: np.ndarray, kind: str) -> np.ndarray:
    """Polygon (K, 2) int32 of a mask of `kind` on 68 points p (pixels)."""
    jaw = p[1:16]
    nose = p[28] if kind in ("kn95", "cloth") else (p[28] + p[29]) / 2
    if kind == "n95":  # an ellipse through the cheeks, the nose bridge and below the chin
        centre = (nose + p[8]) / 2
        ax = np.linalg.norm(p[15] - p[1]) / 2 * 0.98
        ay = np.linalg.norm(p[8] - nose) / 2 * 1.08
        ang = np.degrees(np.arctan2(*(p[8] - nose)[::-1])) - 90
        return cv2.ellipse2Poly(tuple(np.round(centre).astype(int)), (int(ax), int(ay)), int(ang), 0, 360, 8)
    top_l, top_r = p[1] + (nose - p[1]) * [0.0, 0.2], p[15] + (nose - p[15]) * [0.0, 0.2]
    chin = p[8] + (p[8] - nose) * (0.12 if kind == "kn95" else 0.05)
    pts = [top_l, nose, top_r] + [jaw[i] for i in range(14, 7, -1)] + [chin] + [jaw[i] for i in range(6, -1, -1)]
    return np.round(np.array(pts)).astype(np.int32)


def draw(img48: np.ndarray, p: np.ndarray, kind: str, rng: np.random.Generator, textures) -> np.ndarray:
    """One mask on a 48x48 row whose 68 points p are in 192-px coordinates; (48, 48) uint8."""
    big = cv2.resize(img48, (48 * UP, 48 * UP), interpolation=cv2.INTER_CUBIC)
    poly = _outline(p, kind)
    region = np.zeros(big.shape, np.uint8)
    cv2.fillPoly(region, [poly], 255)
    if region.sum() == 0:
        return img48
    tex = textures[rng.integers(len(textures))]
    scale = rng.uniform(0.4, 1.5)
    tex = cv2.resize(tex, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    if min(tex.shape) < big.shape[0] + 2:
        tex = cv2.resize(tex, (big.shape[0] + 2, big.shape[0] + 2))
    y, x = rng.integers(0, tex.shape[0] - big.shape[0]), rng.integers(0, tex.shape[1] - big.shape[1])
    patch = tex[y:y + big.shape[0], x:x + big.shape[1]].astype(np.float32)
    rot = cv2.getRotationMatrix2D((big.shape[1] / 2, big.shape[0] / 2), rng.uniform(0, 360), 1.0)
    patch = cv2.warpAffine(patch, rot, big.shape[::-1], borderMode=cv2.BORDER_REFLECT)
    level, spread = rng.uniform(15, 240), rng.uniform(0.1, 0.6)
    patch = level + (patch - patch.mean()) / max(patch.std(), 1) * spread * 40
    if kind in ("surgical", "kn95"):  # folds: a few horizontal (surgical) or one vertical (kn95) creases
        yy, xx = np.mgrid[0:big.shape[0], 0:big.shape[1]]
        crease = np.sin(yy / rng.uniform(6, 12)) if kind == "surgical" else -np.exp(-((xx - p[30, 0]) / 3.0) ** 2)
        patch += 12 * crease
    src = cv2.cvtColor(np.clip(patch, 0, 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)
    dst = cv2.cvtColor(big, cv2.COLOR_GRAY2BGR)
    x0, y0, w, h = cv2.boundingRect(poly)
    centre = (int(x0 + w / 2), int(y0 + h / 2))
    try:
        out = cv2.seamlessClone(src, dst, region, centre, cv2.NORMAL_CLONE)
    except cv2.error:  # a region touching the border: a plain paste
        out = np.where(region[..., None] > 0, src, dst)
    out = cv2.cvtColor(out, cv2.COLOR_BGR2GRAY)
    # the Poisson blend takes the face's colours at the edge; keep the cloth's own level inside
    inner = cv2.erode(region, np.ones((9, 9), np.uint8)) > 0
    out = np.where(inner, np.clip(0.5 * out + 0.5 * patch, 0, 255), out).astype(np.uint8)
    return cv2.resize(out, (48, 48), interpolation=cv2.INTER_AREA)


def generate(images: np.ndarray, rows: np.ndarray, seed: int = 7) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(kept row indices into images, {type: (K, 48, 48) uint8}) for the rows where HOG finds a face."""
    det = dlib.get_frontal_face_detector()
    pred = dlib.shape_predictor(face_recognition_models.pose_predictor_model_location())
    textures = _textures()
    keep, points = [], []
    for i, img in enumerate(images):
        big = cv2.resize(img, (48 * UP, 48 * UP), interpolation=cv2.INTER_CUBIC)
        faces = det(big, 1)
        if not faces:
            continue
        r = max(faces, key=lambda f: f.area())
        s = pred(big, r)
        keep.append(i)
        points.append(np.array([[s.part(k).x, s.part(k).y] for k in range(68)], np.float64))
    out = {}
    for kind in TYPES:
        out[kind] = np.stack([draw(images[i], p, kind, np.random.default_rng([seed, int(rows[i]), TYPES.index(kind)]),
                                   textures) for i, p in zip(keep, points)])
    return np.array(keep), out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path)
    ap.add_argument("--data", default=None)
    ap.add_argument("--out", type=Path, default=None, help="save the generated masks (npz; never commit it)")
    ap.add_argument("--preview", type=Path, default=None, help="PNG: clean, maskfer's two families, this one")
    a = ap.parse_args(argv)
    if not (a.run / "config.json").is_file():
        ap.error(f"{a.run}: not a run folder (no config.json)")
    from datasets import load_fer2013  # only the data loader and the models' inference: nothing of the masks
    from experiments.model.inference import load_model, predict_proba
    cfg = json.loads((a.run / "config.json").read_text())
    data = a.data or cfg["data"]
    if not Path(data).is_file():
        ap.error(f"--data {data}: no such file")
    fer = load_fer2013(data).split("PrivateTest")
    cache = Path(a.out) if a.out else None
    # the cache holds this script's masks of these very rows: keyed by the data's hash, its PrivateTest rows and
    # this script's version; another data file or version draws them again
    key = np.array(f"{fer.source_hash}/{len(fer)}/{SCRIPT_VERSION}")
    z = np.load(cache) if cache and cache.exists() else None
    if z is not None and "key" in z and str(z["key"]) == str(key):
        keep, masks = z["keep"], {k: z[k] for k in TYPES}
    else:
        if z is not None:
            print(f"{cache}: made from other data or by another version of this script; drawing the masks again")
        keep, masks = generate(fer.images, fer.rows)
        if cache:
            np.savez_compressed(cache, keep=keep, key=key, **masks)
    print(f"faces found on {len(keep)} of {len(fer)} PrivateTest rows", flush=True)
    labels = fer.labels[keep]
    table = {}
    for variant in [v for v in ("clean", "masked", "mixed") if (a.run / v / "model.keras").is_file()]:
        model = load_model(a.run / variant / "model.keras")
        row = {"clean": float((predict_proba(model, fer.images[keep]).argmax(1) == labels).mean())}
        for kind in TYPES:
            row[f"maskfer:{kind}"] = _own(a.run, variant, f"masked:{kind}", fer.rows[keep], labels)
            row[f"outside:{kind}"] = float((predict_proba(model, masks[kind]).argmax(1) == labels).mean())
        row["maskfer:masked"] = _own(a.run, variant, "masked", fer.rows[keep], labels)
        row["maskfer:held-out"] = _own(a.run, variant, "masked:held-out", fer.rows[keep], labels)
        gaps = [row[f"maskfer:{k}"] - row[f"outside:{k}"] for k in TYPES if row[f"maskfer:{k}"] is not None]
        row["gap_mean"] = float(np.mean(gaps)) if len(gaps) == len(TYPES) else None  # a type the run did not score
        table[variant] = row
        print(variant, json.dumps({k: round(100 * v, 1) if v is not None else None for k, v in row.items()}), flush=True)
    if a.preview:
        _preview(a.preview, fer.images[keep[:12]], masks)
    if a.out:
        Path(str(a.out) + ".json").write_text(json.dumps({"rows": len(fer), "found": len(keep), "table": table}, indent=1))
    return 0


def _own(run: Path, variant: str, condition: str, rows: np.ndarray, labels: np.ndarray) -> float | None:
    """A run's accuracy on `condition` restricted to `rows` (from its predictions file)."""
    from experiments.runfolder import predictions_path, read_predictions
    path = predictions_path(run, variant, condition)
    if not path.is_file():
        return None
    r, _, p, _ = read_predictions(path)
    pos = {int(k): i for i, k in enumerate(r)}
    idx = np.array([pos[int(k)] for k in rows])
    return float((p[idx] == labels).mean())


def _preview(path: Path, clean: np.ndarray, masks: dict):
    """PNG: a row per face: clean, then this generator's four types."""
    grid = np.vstack([np.hstack([clean[i]] + [masks[k][i] for k in TYPES]) for i in range(len(clean))])
    cv2.imwrite(str(path), cv2.resize(grid, None, fx=3, fy=3, interpolation=cv2.INTER_NEAREST))


if __name__ == "__main__":
    sys.exit(main())
