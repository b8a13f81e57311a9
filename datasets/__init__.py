"""FER2013 dataset stage: CSV or image folders -> 48x48 uint8 images, labels, usage and row ids."""
from pathlib import Path

from .cache import default_cache_dir, load_fer2013
from .fer2013 import (COLUMNS, EMOTIONS, IMAGE_SUFFIXES, N_CLASSES, N_PIXELS, SIDE, USAGES, DatasetError, FERData,
                      file_sha256, load_csv_uncached, parse_csv_bytes)
from .folders import FolderListing, emotion_of, list_emotion_folders, load_image_folders
from .prepared import is_prepared, load_prepared
from .synth import make_synthetic, write_fer_csv

__all__ = ["COLUMNS", "EMOTIONS", "IMAGE_SUFFIXES", "N_CLASSES", "N_PIXELS", "SIDE", "USAGES", "DatasetError", "FERData", "default_cache_dir",
           "file_sha256", "FolderListing", "emotion_of", "list_emotion_folders", "load_csv_uncached", "load_fer2013", "load_image_folders", "make_synthetic",
           "parse_csv_bytes", "write_fer_csv", "load_dataset"]


def load_dataset(path, cache_dir=None, use_cache: bool = True) -> FERData:
    """A FER2013 CSV (`.csv`/`.csv.gz`, cached), a prepared set (`datasets.prepared`) or a `<split>/<emotion>/`
    tree of 48x48 crops, by what `path` is."""
    p = Path(path)
    if is_prepared(p):
        return load_prepared(p)
    if p.is_dir():
        return load_image_folders(p)
    return load_fer2013(p, cache_dir=cache_dir, use_cache=use_cache)
