"""`python -m experiments.predict MODEL INPUT... [--out DIR] [--json] [--mask]`: emotions of the faces in
photos and videos.

Faces are found with dlib's detector, aligned by the eye landmarks, cropped and turned into 48x48
grayscale the way FER2013 rows look, and classified by the saved model as evaluation scored it (its own
test-time views included).
Images get an annotated copy; a video gets an annotated video and a table of how often each emotion
was predicted over its frames. `--mask` masks each face first, to show what the model says when the
same person wears a mask. MODEL may also be a `.tflite` file from `experiments.export`, to see what the
phone-sized model says.
"""
from __future__ import annotations

import argparse
import csv
import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from datasets import EMOTIONS, IMAGE_SUFFIXES
from datasets.atomic import atomic_path
from masking import MASK_TYPES, LandmarkFinder, MaskSpec, apply_mask
from datasets.cli import InputError, at_least, exit_code, folder
from datasets.faces import align_crop

from ..model.inference import load_model, predict_proba
from .tflite import TFLiteModel

VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v"}


@dataclass(frozen=True)
class Face:
    box: tuple[int, int, int, int]
    label: str
    probabilities: dict[str, float]


class Predictor:
    """Loads a `.keras` or `.tflite` model once and classifies every face in RGB frames."""

    def __init__(self, model_path: str | Path, mask: bool = False, mask_type: str = "surgical"):
        path = Path(model_path)
        if not path.is_file():
            raise InputError(f"{path}: no such model file")
        try:
            self.model = TFLiteModel.from_file(path) if path.suffix == ".tflite" else load_model(path)
        except Exception as e:  # keras and TFLite raise many types for a bad file
            raise InputError(f"{path}: not a loadable {path.suffix or 'model'} file ({e})") from None
        self.finder = LandmarkFinder()
        self.mask = MaskSpec(mask_type) if mask else None

    def faces(self, rgb: np.ndarray) -> tuple[list[Face], np.ndarray]:
        """Classify every face in an RGB frame; returns the faces and the frame as classified (masked or not)."""
        found = self.finder.photo_landmarks(rgb)
        if self.mask is not None:
            for points, _ in found:
                rgb, _ = apply_mask(rgb, points, self.mask)
        if not found:
            return [], rgb
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        p = predict_proba(self.model, np.stack([align_crop(gray, points) for points, _ in found]))
        faces = [Face(tuple(int(v) for v in box), EMOTIONS[int(q.argmax())],
                      {e: float(q[k]) for k, e in enumerate(EMOTIONS)}) for (_, box), q in zip(found, p)]
        return faces, rgb


def annotate(rgb: np.ndarray, faces: list[Face]) -> np.ndarray:
    out = rgb.copy()
    thick = max(1, round(max(rgb.shape[:2]) / 400))
    for f in faces:
        x, y, w, h = f.box
        cv2.rectangle(out, (x, y), (x + w, y + h), (255, 64, 64), thick)
        text = f"{f.label} {f.probabilities[f.label]:.2f}"
        cv2.putText(out, text, (x, max(12, y - 6)), cv2.FONT_HERSHEY_SIMPLEX, 0.45 * thick, (255, 64, 64), thick,
                    cv2.LINE_AA)
    return out


def predict_image(pred: Predictor, path: Path, out_dir: Path | None) -> dict:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise InputError(f"{path}: unreadable image")
    faces, shown = pred.faces(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        with atomic_path(out_dir / f"{path.stem}_annotated.png") as tmp:
            cv2.imwrite(str(tmp), cv2.cvtColor(annotate(shown, faces), cv2.COLOR_RGB2BGR))
    return {"input": str(path), "faces": [{"box": list(f.box), "label": f.label, "probabilities": f.probabilities}
                                          for f in faces]}


def predict_video(pred: Predictor, path: Path, out_dir: Path, every: int = 1) -> dict:
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise InputError(f"{path}: unreadable video")
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    writer, counts, frames, last = None, dict.fromkeys(EMOTIONS, 0), 0, []
    with atomic_path(out_dir / f"{path.stem}_annotated.mp4") as tmp_video:
        while True:
            ok, bgr = cap.read()
            if not ok:
                break
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            if frames % every == 0:
                last, rgb = pred.faces(rgb)
                for f in last:
                    counts[f.label] += 1
            if writer is None:
                h, w = rgb.shape[:2]
                writer = cv2.VideoWriter(str(tmp_video), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
            writer.write(cv2.cvtColor(annotate(rgb, last), cv2.COLOR_RGB2BGR))
            frames += 1
        cap.release()
        if writer is not None:
            writer.release()
        if frames == 0:
            raise InputError(f"{path}: unreadable video (no frames)")
    total = sum(counts.values())
    table = [{"emotion": e, "count": c, "share": c / total if total else 0.0} for e, c in counts.items()]
    with atomic_path(out_dir / f"{path.stem}_emotions.csv") as tmp, open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["emotion", "count", "share"], lineterminator="\n")
        w.writeheader()
        w.writerows(table)
    return {"input": str(path), "frames": frames, "faces": total, "emotions": table}


def _expand(inputs: list[str]) -> list[Path]:
    files = []
    for name in inputs:
        p = Path(name)
        if p.is_dir():
            files += sorted(q for q in p.rglob("*") if q.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES)
        elif p.is_file():
            files.append(p)
        else:
            raise InputError(f"{p}: no such file or folder")
    return files


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m experiments.predict", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="a .keras model from a run folder, or a .tflite file that export wrote")
    ap.add_argument("inputs", nargs="+", help="images, folders or videos")
    ap.add_argument("--out", type=folder, default="predictions", help="folder for annotated copies (default ./predictions)")
    ap.add_argument("--json", action="store_true", help="print one JSON list of results")
    ap.add_argument("--mask", action="store_true", help="mask each detected face before classifying it")
    ap.add_argument("--mask-type", default="surgical", choices=MASK_TYPES)
    ap.add_argument("--every", type=at_least(1), default=1, help="classify every Nth video frame")
    a = ap.parse_args(argv)
    return exit_code(lambda: predict(a), InputError)


def predict(a: argparse.Namespace) -> None:
    """The CLI's work; InputError names an unreadable model or input."""
    pred = Predictor(a.model, a.mask, a.mask_type)
    results = []
    for path in _expand(a.inputs):
        if path.suffix.lower() in VIDEO_SUFFIXES:
            res = predict_video(pred, path, Path(a.out), max(1, a.every))
            if not a.json:
                print(f"{path}: {res['frames']} frames, {res['faces']} faces")
                for row in res["emotions"]:
                    print(f"  {row['emotion']:<9} {row['count']:>6} {100 * row['share']:6.1f}%")
        else:
            res = predict_image(pred, path, Path(a.out))
            if not a.json:
                if not res["faces"]:
                    print(f"{path}: no face found")
                for f in res["faces"]:
                    print(f"{path}: {f['label']} ({f['probabilities'][f['label']]:.2f}) at {f['box']}")
        results.append(res)
    if a.json:
        print(json.dumps(results, indent=2))
