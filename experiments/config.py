"""Run configuration: frozen dataclasses and the three profiles (smoke, default, full)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

from masking import MASK_TYPES

from .conditions import VARIANTS
# The model registry's names and view sets (experiments.models), kept here so parsing options does not import Keras.
MODEL_NAMES = ("maskfer_cnn", "report_cnn", "resnet_small")
VIEWS = ("centre", "five", "ten")
PRECISIONS = ("auto", "float32", "bfloat16")
TRANSFER_METHODS = ("scratch", "clean_init", "distill")


@dataclass(frozen=True)
class AugmentConfig:
    """ImageDataGenerator's parameters, implemented with Keras 3 preprocessing layers in tf.data.
    rotation_range in degrees; shifts and zoom as fractions of the image size."""

    rotation_range: float = 5.0
    width_shift_range: float = 0.0     # the training crop already shifts by up to (48 - crop) / 2 pixels
    height_shift_range: float = 0.0
    zoom_range: float = 0.05
    horizontal_flip: bool = True


@dataclass(frozen=True)
class TrainConfig:
    """One shared recipe, used unchanged for every variant."""

    model: str = "maskfer_cnn"
    width: int = 48                 # maskfer_cnn / resnet_small base width (ignored by report_cnn)
    epochs: int = 20
    batch_size: int = 128
    optimizer: str = "sgd"          # "sgd" (Nesterov momentum) or "adam"
    learning_rate: float = 0.05     # peak, after linear warm-up; cosine decay to 0 afterwards
    momentum: float = 0.9
    warmup_epochs: float = 1.0
    weight_decay: float = 2e-4
    decay_norms: bool = False       # weight decay on BatchNorm scales/offsets and biases too
    dropout: float = 0.3
    label_smoothing: float = 0.1
    class_weights: bool = False     # inverse-frequency sample weights for the class imbalance
    patience: int = 0               # early stopping on validation accuracy; 0 = run the whole schedule
    crop: int = 40                  # training crop side (random position); 48 = no crop
    views: str = "centre"           # test-time views inside the saved model: centre | five | ten
    precision: str = "auto"         # auto (bfloat16 where the CPU has it) | float32 | bfloat16
    jit_compile: bool = True        # XLA, in float32 only (XLA's CPU bfloat16 is slower than oneDNN's)
    seed: int = 0
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def __post_init__(self):
        if self.model not in MODEL_NAMES:
            raise ValueError(f"unknown model {self.model!r}; expected one of {', '.join(MODEL_NAMES)}")
        if not 8 <= self.crop <= 48:
            raise ValueError(f"crop must be 8..48 pixels, got {self.crop}")
        if self.views not in VIEWS:
            raise ValueError(f"unknown views {self.views!r}; expected one of {', '.join(VIEWS)}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"unknown precision {self.precision!r}; expected one of {', '.join(PRECISIONS)}")


@dataclass(frozen=True)
class TransferConfig:
    """How the masked and mixed models learn from the clean model of the same run.

    method: "scratch" (the shared recipe from random weights), "clean_init" (start from the clean model's
    weights and fine-tune for `epochs` at peak rate `learning_rate`) or "distill" (clean_init, and the loss
    also matches the clean model's predictions on the unmasked twin of each training row:
    (1 - alpha) * cross-entropy + alpha * temperature**2 * KL(teacher_T || student_T)).
    Without a clean model in the run, the method is "scratch" whatever is asked.
    """

    method: str = "clean_init"
    epochs: int = 8
    learning_rate: float = 0.02
    alpha: float = 0.5
    temperature: float = 4.0

    def __post_init__(self):
        if self.method not in TRANSFER_METHODS:
            raise ValueError(f"unknown method {self.method!r}; expected one of {', '.join(TRANSFER_METHODS)}")
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"distillation weight must be 0..1, got {self.alpha}")
        if self.temperature <= 0:
            raise ValueError(f"distillation temperature must be positive, got {self.temperature}")


@dataclass(frozen=True)
class RunConfig:
    """Everything a run depends on. `train` defaults to the profile's recipe and `limit_rows` to the
    profile's row limit (SMOKE_ROWS for smoke, all rows otherwise), so RunConfig(profile="smoke") is a
    smoke run from Python too."""

    variants: tuple[str, ...] = ("clean", "masked")
    profile: str = "default"
    data: str | None = None         # FER2013 csv / csv.gz / image folders; None = synthetic (smoke only)
    out: str = ""
    train: TrainConfig | None = None
    transfer: TransferConfig | None = None  # None = the profile's
    train_mask_types: tuple[str, ...] = MASK_TYPES
    test_mask_types: tuple[str, ...] = MASK_TYPES
    mask_seed: int = 0
    limit_rows: int | None = None   # keep at most this many rows per split (0 = all)
    workers: int = 0                # masking processes; 0 = one per core
    cache_dir: str | None = None
    report: bool = True
    overwrite: bool = False         # retrain variants whose recorded fingerprint differs
    verbose: bool = False           # TensorFlow log lines and per-epoch Keras output
    test_data: tuple[tuple[str, str], ...] = ()  # cross-dataset test sets: ((NAME, PATH), ...)

    def __post_init__(self):
        if self.profile not in PROFILES:
            raise ValueError(f"unknown profile {self.profile!r}; expected one of {', '.join(PROFILES)}")
        bad = [v for v in self.variants if v not in VARIANTS]
        if bad or not self.variants:
            raise ValueError(f"unknown variant {bad[0] if bad else '(none)'!r}; expected one of {', '.join(VARIANTS)}")
        if self.train is None:
            object.__setattr__(self, "train", PROFILES[self.profile])
        if self.transfer is None:
            object.__setattr__(self, "transfer", TRANSFER[self.profile])
        if self.limit_rows is None:
            object.__setattr__(self, "limit_rows", SMOKE_ROWS if self.profile == "smoke" else 0)

    def to_dict(self) -> dict:
        return asdict(self)


PROFILES: dict[str, TrainConfig] = {
    # CI: one epoch on a few hundred rows, end to end.
    "smoke": TrainConfig(epochs=1, batch_size=64, width=8, warmup_epochs=0.0, crop=40, views="ten", jit_compile=False),
    # The 2-core CPU budget: both variants, evaluation and the report in under an hour.
    "default": TrainConfig(),
    # A GPU: a longer schedule and a wider network.
    "full": TrainConfig(width=96, epochs=60, views="ten"),
}

TRANSFER: dict[str, TransferConfig] = {
    "smoke": TransferConfig(epochs=1),
    "default": TransferConfig(),
    "full": TransferConfig(epochs=30),
}

SMOKE_ROWS = 300


def profile_config(profile: str, **overrides) -> TrainConfig:
    """The profile's TrainConfig with the given fields replaced (None values are ignored)."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; expected one of {', '.join(PROFILES)}")
    return replace(PROFILES[profile], **{k: v for k, v in overrides.items() if v is not None})
