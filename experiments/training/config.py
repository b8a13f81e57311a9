"""The training recipe's configuration: frozen dataclasses that check their own values.

A bad value raises `ConfigError` naming the field (`.field`, dotted for nested configs: "transfer.alpha");
the CLIs report it under the option's name. No TensorFlow here: parsing options does not import Keras.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from datasets.checks import ConfigError, check, check_choice  # noqa: F401  (ConfigError: re-exported for the recipe's users)

MODEL_NAMES = ("maskfer_se", "maskfer_cnn", "report_cnn", "resnet_small")  # the registry in experiments.model.architectures
VIEWS = ("centre", "five", "ten")  # test-time views: the centre crop; + four corners; each also mirrored
PRECISIONS = ("auto", "float32", "bfloat16")
TRANSFER_METHODS = ("scratch", "clean_init", "distill")
OPTIMIZERS = ("sgd", "adam")
# The lower-face occluders' code (`occlusion.py`), in the fingerprint of every model trained with them: a change
# retrains such models, never reuses them (tests/test_versions.py pins occlusion.py's hash to this number).
# 1: the first occluders (no eye floor); 2: the masks' eye clearance by landmark status.
OCCLUDER_VERSION = 2


@dataclass(frozen=True)
class AugmentConfig:
    """ImageDataGenerator's parameters, implemented with Keras 3 preprocessing layers in tf.data.
    rotation_range in degrees; shifts and zoom as fractions of the image size."""

    rotation_range: float = 5.0
    width_shift_range: float = 0.0     # the training crop already shifts by up to (48 - crop) / 2 pixels
    height_shift_range: float = 0.0
    zoom_range: float = 0.05
    horizontal_flip: bool = True
    erasing: float = 0.0            # probability of erasing one random patch (Keras RandomErasing), after the crop

    def __post_init__(self):
        for name in ("rotation_range", "width_shift_range", "height_shift_range", "zoom_range"):
            check(getattr(self, name) >= 0, name, f"must be 0 or more, got {getattr(self, name)}")
        check(0 <= self.erasing <= 1, "erasing", f"must be 0..1, got {self.erasing}")


@dataclass(frozen=True)
class TrainConfig:
    """One shared recipe, used unchanged for every variant."""

    model: str = "maskfer_se"
    width: int = 48                 # maskfer_se / maskfer_cnn / resnet_small base width (ignored by report_cnn)
    epochs: int = 36
    batch_size: int = 128
    optimizer: str = "sgd"          # "sgd" (Nesterov momentum) or "adam"
    learning_rate: float = 0.05     # peak, after linear warm-up; cosine decay to 0 afterwards
    momentum: float = 0.9
    warmup_epochs: float = 1.0
    weight_decay: float = 2e-4
    decay_norms: bool = False       # weight decay on BatchNorm scales/offsets and biases too
    dropout: float = 0.3
    label_smoothing: float = 0.1
    class_weights: bool = False     # "balanced" sample weights for the class imbalance
    patience: int = 0               # early stopping on validation accuracy; 0 = run the whole schedule
    validate_from: float = 0.5      # PublicTest scored (and the best epoch kept) from this share of the schedule on
    crop: int = 40                  # training crop side (random position); 48 = no crop
    views: str = "centre"           # test-time views inside the saved model: centre | five | ten
    precision: str = "auto"         # auto (bfloat16 where the CPU has it) | float32 | bfloat16
    jit_compile: bool = True        # XLA, in float32 only (XLA's CPU bfloat16 is slower than oneDNN's)
    seed: int = 0
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def __post_init__(self):
        check_choice(self.model, MODEL_NAMES, "model")
        check_choice(self.views, VIEWS, "views")
        check_choice(self.precision, PRECISIONS, "precision")
        check_choice(self.optimizer, OPTIMIZERS, "optimizer")
        for name in ("width", "epochs", "batch_size"):
            check(getattr(self, name) >= 1, name, f"must be at least 1, got {getattr(self, name)}")
        check(8 <= self.crop <= 48, "crop", f"must be 8..48 pixels, got {self.crop}")
        check(0 <= self.dropout < 1, "dropout", f"must be 0..1 (1 excluded), got {self.dropout}")
        check(0 <= self.label_smoothing < 1, "label_smoothing", f"must be 0..1 (1 excluded), got {self.label_smoothing}")
        check(self.patience >= 0, "patience", f"must be 0 or more, got {self.patience}")
        check(0 <= self.validate_from < 1, "validate_from", f"must be 0..1 (1 excluded), got {self.validate_from}")


@dataclass(frozen=True)
class TransferConfig:
    """How the masked and mixed models learn from the clean model of the same run.

    method: "scratch" (the shared recipe from random weights), "clean_init" (start from the clean model's
    weights and fine-tune for `epochs` at peak rate `learning_rate`) or "distill" (clean_init, and the loss
    also matches the clean model's predictions on the unmasked twin of each training row:
    (1 - alpha) * cross-entropy + alpha * temperature**2 * KL(teacher_T || student_T)).
    Without a clean model in the run, the method is "scratch" whatever is asked. seed: the fine-tuning's own
    seed (shuffling, augmentation, occluders), None for the training seed; with one clean model kept, a
    study of fine-tuning seeds measures what the masked recipe alone varies by.
    """

    method: str = "clean_init"
    epochs: int = 20
    learning_rate: float = 0.02
    alpha: float = 0.5
    temperature: float = 4.0
    seed: int | None = None

    def __post_init__(self):
        check_choice(self.method, TRANSFER_METHODS, "transfer.method")
        check(self.seed is None or self.seed >= 0, "transfer.seed", f"must be 0 or more, got {self.seed}")
        check(self.epochs >= 1, "transfer.epochs", f"must be at least 1, got {self.epochs}")
        check(0.0 <= self.alpha <= 1.0, "transfer.alpha", f"must be 0..1, got {self.alpha}")
        check(self.temperature > 0, "transfer.temperature", f"must be positive, got {self.temperature}")
