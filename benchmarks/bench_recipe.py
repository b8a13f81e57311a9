"""Recipe probe: train one model on FER2013 with TrainConfig / AugmentConfig / TransferConfig overrides
and print its PublicTest accuracy. PrivateTest is not touched.

    FER2013_CSV=../shared/datasets/fer2013/fer2013.csv.gz python benchmarks/bench_recipe.py NAME crop=40 epochs=16
    ... bench_recipe.py NAME variant=masked transfer.method=distill transfer.epochs=8 init=/tmp/maskfer-recipe/C/model.keras

variant=masked trains on the masked rows (the run's default mask config; masks cached in
$MASKFER_CACHE_DIR) and validates on masked PublicTest; init= a clean saved model to start from (methods
clean_init and distill; distill also uses that model as the teacher on the clean twin of each row);
teacher=PATH[,PATH...] distils from those clean saved models instead (their probabilities averaged: an ensemble
teacher stronger than the starting point).
ema=M (e.g. 0.999) keeps an exponential moving average of the weights (Keras's `use_ema`; training itself is
unchanged) and swa_from=E a plain average of the weights at the end of epochs E..last (SWA); at the end each
average is scored on PublicTest like the saved model (BatchNorm statistics recomputed, test-time views), beside
the run's own best epoch.
Writes the training folder and model.keras to $TMPDIR/maskfer-recipe/NAME and a JSON line to stdout.
"""
import json
import os
import sys
import tempfile
import time
from dataclasses import fields, replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def parse(argv):
    from experiments.config import AugmentConfig, TrainConfig, TransferConfig
    groups = {c: {} for c in (TrainConfig, AugmentConfig, TransferConfig)}
    extra = {"variant": "clean", "init": None, "teacher": None, "bn_check": "0", "ema": "0", "swa_from": "0"}
    for a in argv:
        if "=" not in a:
            raise ValueError(f"{a!r}: expected FIELD=VALUE")
        k, v = a.split("=", 1)
        if k in extra:
            extra[k] = v
            continue
        if k.startswith("transfer."):  # TransferConfig's fields: transfer.epochs=8, transfer.method=distill
            owner, k = TransferConfig, k.split(".", 1)[1]
        else:
            owner = next((c for c in (TrainConfig, AugmentConfig) if k in {f.name for f in fields(c)}), None)
        if owner is None or k not in {f.name for f in fields(owner)}:
            raise ValueError(f"unknown setting {k}")
        typ = type(getattr(owner(), k))
        groups[owner][k] = (v == "True") if typ is bool else typ(v)
    train = replace(TrainConfig(), **groups[TrainConfig], augment=replace(AugmentConfig(), **groups[AugmentConfig]))
    return train, replace(TransferConfig(), **groups[TransferConfig]), extra, groups


def main(argv=None):
    import argparse
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("name", help="this recipe's name in the output")
    ap.add_argument("settings", nargs="*", metavar="FIELD=VALUE", help="TrainConfig / AugmentConfig fields, "
                    "transfer.<field>, or variant, init, teacher, bn_check, ema, swa_from")
    a = ap.parse_args(argv)
    try:
        cfg, transfer, extra, groups = parse(a.settings)
    except (ValueError, TypeError) as e:
        ap.error(str(e))
    name, settings = a.name, a.settings
    from datasets import load_dataset
    from masking import MaskConfig, mask_dataset, mask_key
    from experiments.model.inference import load_model, predict_proba
    from experiments.training.train import train_model
    fer = load_dataset(os.environ["FER2013_CSV"])
    clean = fer
    if extra["variant"] == "masked":
        mcfg = MaskConfig()
        fer = mask_dataset(fer, mcfg, None, os.environ.get("MASKFER_CACHE_DIR")).as_fer(fer, mask_key(fer, mcfg))
    tr, va = fer.split("Training"), fer.split("PublicTest")
    init = load_model(extra["init"]) if extra["init"] and transfer.method != "scratch" else None
    teacher = None
    if transfer.method == "distill":  # the teacher sees the clean twin of each training row
        teachers = [load_model(t) for t in extra["teacher"].split(",")] if extra["teacher"] else [init]
        if None in teachers:
            sys.exit("transfer.method=distill needs init= or teacher=")
        rows = clean.split("Training").images
        teacher = np.mean([predict_proba(t, rows) for t in teachers], axis=0)
    t = time.time()
    out = Path(tempfile.gettempdir()) / "maskfer-recipe" / name
    if extra["bn_check"] == "1":  # why the validation curve swings: BatchNorm's running statistics?
        import experiments.training.train as train_mod
        train_mod.EpochLine = bn_checker(tr, va, cfg.crop)
    averages = {}
    if float(extra["ema"]) or int(extra["swa_from"]):
        import experiments.training.train as train_mod
        train_mod._optimizer = with_ema(train_mod._optimizer, float(extra["ema"]))
        train_mod.EpochLine = averager(tr, va, cfg, int(extra["swa_from"]), bool(float(extra["ema"])), averages)
    m = train_model(tr, va, cfg, out, verbose=1, init=init, teacher=teacher, transfer=transfer)
    dt = time.time() - t
    m.save(out / "model.keras")
    info = json.loads((out / "train.json").read_text())
    print(json.dumps({"name": name, "settings": settings, "train_s": round(dt),
                      "val_centre_best": info["best_val_accuracy_centre_crop"],
                      "val_saved_model": info["val_accuracy_saved_model"], "views": cfg.views,
                      "precision": info["precision"], "cpu": info["cpu"], **averages}), flush=True)
    for views in ("centre", "five", "ten"):  # the same weights with each view set
        from experiments.model.views import with_views
        backbone = m.get_layer("backbone")
        p = predict_proba(with_views(backbone, views), va.images)
        print(json.dumps({"name": name, "views": views, "val": float((p.argmax(1) == va.labels).mean())}), flush=True)


def with_ema(make_optimizer, momentum):
    """train._optimizer, with Keras's weight EMA switched on (fit swaps the averages in at its end)."""
    def make(cfg, rate):
        opt = make_optimizer(cfg, rate)
        if momentum:
            opt.use_ema, opt.ema_momentum, opt.ema_overwrite_frequency = True, momentum, None
        return opt
    return make


def averager(tr, va, cfg, swa_from, ema, results):
    """An EpochLine that also keeps the SWA mean of the weights (epochs swa_from.. on) and, when training ends,
    scores the EMA weights (which fit has just put in the model) and the SWA weights on PublicTest, each as
    the saved model would be: a float32 copy, BatchNorm recomputed on the same training crops, the views."""
    import numpy as np
    from experiments.model.views import with_views
    from experiments.model.inference import predict_proba
    from experiments.training.precisebn import recompute_batchnorm, stats_sample
    from experiments.training.train import EpochLine, _in_float32
    stats_x = stats_sample(tr.images, cfg.crop, seed=cfg.seed)

    def score(model, weights):
        copy = _in_float32(model, cfg)
        copy = copy if copy is not model else model.__class__.from_config(model.get_config())
        copy.set_weights(weights)
        recompute_batchnorm(copy, stats_x)
        return float((predict_proba(with_views(copy, cfg.views), va.images).argmax(1) == va.labels).mean())

    class Average(EpochLine):
        swa, n = None, 0

        def on_epoch_end(self, epoch, logs=None):
            super().on_epoch_end(epoch, logs)
            if swa_from and epoch + 1 >= swa_from:
                w = [np.array(v) for v in self.model.get_weights()]
                self.n += 1
                self.swa = w if self.swa is None else [a + (b - a) / self.n for a, b in zip(self.swa, w)]

        def on_train_end(self, logs=None):
            if ema:
                results["val_ema"] = score(self.model, self.model.get_weights())
            if self.swa is not None:
                results["val_swa"], results["swa_epochs"] = score(self.model, self.swa), self.n
            print(f"      averages: {results}", flush=True)
    return Average


def bn_checker(tr, va, crop, batches=40):
    """An EpochLine that also prints the validation accuracy with BatchNorm statistics recomputed on
    `batches` training batches at the epoch's weights (in a copy; the training model is untouched)."""
    import numpy as np
    from experiments.backend import keras
    from experiments.training.data import centre_crop
    from experiments.training.train import EpochLine

    class Check(EpochLine):
        def on_epoch_end(self, epoch, logs=None):
            super().on_epoch_end(epoch, logs)
            copy = keras.models.clone_model(self.model)
            copy.set_weights(self.model.get_weights())
            bns = [layer for layer in copy.layers if isinstance(layer, keras.layers.BatchNormalization)]
            rng = np.random.default_rng(epoch)
            for k in range(batches):  # cumulative mean of the batch statistics
                for layer in bns:
                    layer.momentum = k / (k + 1)
                idx = rng.choice(len(tr), 128, replace=False)
                copy(np.asarray(centre_crop(tr.images[idx][..., None].astype("float32"), crop)), training=True)
            x = np.asarray(centre_crop(va.images[..., None].astype("float32"), crop))
            acc = float((copy.predict(x, verbose=0).argmax(1) == va.labels).mean())
            print(f"      epoch {epoch + 1}: val_accuracy with recomputed BatchNorm statistics {acc:.4f}", flush=True)
    return Check


if __name__ == "__main__":
    main()
