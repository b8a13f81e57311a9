"""The report's cross-dataset section: every model on the user's other test sets, clean and masked."""
from __future__ import annotations

from pathlib import Path


from datasets import EMOTIONS
from experiments import conditions as C
from experiments.runfolder import load_set_samples

from . import figures


def set_names(results: list[dict]) -> list[str]:
    return list(dict.fromkeys(s[0] for r in results if (s := C.set_of(r["test"]))))


def sections(run: Path, metrics: dict, cells: dict, models: list[str]) -> list[dict]:
    """Per test set: its summary (images, how faces were found, skipped folders), per model and condition the
    scores with intervals (cells from the results matrix), the masked-minus-clean drop beside FER2013's,
    per-emotion recall, and a face grid."""
    out = []
    for name in set_names(metrics.get("results", [])):
        clean, masked = C.set_condition(name, C.CLEAN), C.set_condition(name, C.MASKED)
        rows = []
        for t in [C.BASELINE] + models:
            a, b = cells.get((t, clean)), cells.get((t, masked))
            if a is None or b is None:
                continue
            fa, fb = cells.get((t, C.CLEAN)), cells.get((t, C.MASKED))
            rows.append({"train": t, "clean": a, "masked": b, "drop": a["accuracy"] - b["accuracy"],
                         "fer_drop": None if fa is None or fb is None else fa["accuracy"] - fb["accuracy"]})
        emotions = (metrics.get("test_sets", {}).get(name, {}).get("emotions")
                    or next((r["emotions"] for r in metrics["results"] if r["test"] == clean), list(EMOTIONS)))
        recall = [(f"{t} model / {kind}", [cells[(t, cond)]["per_class"][e]["recall"] for e in emotions])
                  for t in models for kind, cond in (("clean", clean), ("masked", masked)) if (t, cond) in cells]
        z = load_set_samples(run, name)
        faces = None if z is None else figures.face_grid(z["clean"], z["masked"], z["labels"], per_class=4)
        out.append({"name": name, "summary": metrics.get("test_sets", {}).get(name, {}), "rows": rows,
                    "emotions": emotions, "recall": recall, "faces_png": faces})
    return out
