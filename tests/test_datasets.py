from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from datasets import (EMOTIONS, USAGES, DatasetError, load_csv_uncached, load_dataset, load_fer2013,
                      load_image_folders, parse_csv_bytes)
from datasets.__main__ import main as datasets_main
from datasets.fer2013 import _line_blocks, _parse_fast, _parse_strict


def _row(label="3", pixels=None, usage="Training"):
    pixels = " ".join(["7"] * 2304) if pixels is None else pixels
    return f"{label},{pixels},{usage}\n"


def test_synthetic_roundtrip(synth_csv, synth_arrays):
    images, labels, usage = synth_arrays
    fer = load_csv_uncached(synth_csv)
    assert fer.images.shape == (210, 48, 48) and fer.images.dtype == np.uint8
    np.testing.assert_array_equal(fer.images, images)
    np.testing.assert_array_equal(fer.labels, labels)
    np.testing.assert_array_equal(fer.usage, usage)
    np.testing.assert_array_equal(fer.rows, np.arange(210))
    counts = fer.counts()
    assert all(counts[u][e] > 0 for u in USAGES for e in EMOTIONS)  # stratified
    assert sum(counts["Training"].values()) == 168


def test_fast_and_strict_parsers_agree(synth_csv):
    data = synth_csv.read_bytes()
    fast = _parse_fast(_line_blocks([data[:5000], data[5000:9000], data[9000:]]))
    strict = _parse_strict(data, "x")
    assert fast is not None
    for a, b in zip(fast, strict):
        np.testing.assert_array_equal(a, b)


def test_split_keeps_row_ids(synth_csv):
    fer = load_csv_uncached(synth_csv)
    test = fer.split("PrivateTest")
    assert len(test) == int((fer.usage == 2).sum())
    np.testing.assert_array_equal(fer.images[test.rows], test.images)
    with pytest.raises(ValueError, match="unknown usage"):
        fer.split("Test")


def test_quoted_pixels_crlf_and_gzip(tmp_path):
    px = " ".join(str(i % 256) for i in range(2304))
    text = "emotion,pixels,Usage\r\n" + f'5,"{px}",PublicTest\r\n' + f"0,{px},PrivateTest\r\n"
    plain = parse_csv_bytes(text.encode())
    assert plain.labels.tolist() == [5, 0] and plain.usage.tolist() == [1, 2]
    assert plain.images[0, 0, :3].tolist() == [0, 1, 2] and plain.images[1, 47, 47] == 2303 % 256
    gz = tmp_path / "x.csv.gz"
    gz.write_bytes(gzip.compress(text.encode()))
    np.testing.assert_array_equal(load_csv_uncached(gz).images, plain.images)


def test_bom_blank_lines_and_row_ids():
    """A spreadsheet export (UTF-8 BOM) loads by both parsers; skipped blank lines keep the file's row numbers."""
    body = _row("1") + _row("2", usage="PublicTest")
    fer = parse_csv_bytes(("\ufeffemotion,pixels,Usage\n" + body).encode("utf-8"))
    assert fer.labels.tolist() == [1, 2] and fer.rows.tolist() == [0, 1]
    gaps = parse_csv_bytes(("\ufeffemotion,pixels,Usage\n" + _row("1") + "\n\n" + _row("4") + "\n" + _row("5")).encode())
    assert gaps.labels.tolist() == [1, 4, 5] and gaps.rows.tolist() == [0, 3, 5]


def test_fast_parser_across_block_boundaries_with_quotes_and_crlf(monkeypatch):
    """Quoted pixel fields and CRLF line ends, cut into blocks smaller than a row, parse on the fast path."""
    import datasets.fer2013 as fer_mod
    rng = np.random.default_rng(0)
    rows = []
    for i in range(9):
        px = " ".join(str(v) for v in rng.integers(0, 256, 2304))
        rows.append(f'{i % 7},"{px}",{USAGES[i % 3]}\r\n' if i % 2 else f"{i % 7},{px},{USAGES[i % 3]}\r\n")
    data = ("emotion,pixels,Usage\r\n" + "".join(rows)).encode()
    monkeypatch.setattr(fer_mod, "_BLOCK", 3001)  # every block boundary falls inside a row
    fast = _parse_fast(_line_blocks(data[i:i + 3001] for i in range(0, len(data), 3001)))
    assert fast is not None, "the fast path handled it"
    strict = _parse_strict(data, "x")
    for a, b in zip(fast, strict):
        np.testing.assert_array_equal(a, b)
    assert fast[1].tolist() == [i % 7 for i in range(9)]
    np.testing.assert_array_equal(parse_csv_bytes(data).images, strict[0])


def test_reordered_columns_are_accepted():
    px = " ".join(["9"] * 2304)
    fer = parse_csv_bytes(f"Usage,emotion,pixels\nTraining,2,{px}\n".encode())
    assert fer.labels.tolist() == [2] and fer.images.max() == 9


BAD = [
    ("emotion,pixel,Usage\n" + _row(), r"line 1: missing column\(s\) pixels"),
    ("emotion,pixels\n" + "3,1 2\n", r"line 1: missing column\(s\) Usage"),
    ("emotion,pixels,Usage\n" + _row() + _row(pixels="1 2 3"), r"line 3: expected 2304 pixel values, found 3"),
    ("emotion,pixels,Usage\n" + _row(pixels=" ".join(["1"] * 2303 + ["x1"])), r"line 2: pixel 2304 'x1' is not an integer"),
    ("emotion,pixels,Usage\n" + _row(pixels=" ".join(["1.5"] + ["1"] * 2303)), r"line 2: pixel 1 '1.5' is not an integer"),
    ("emotion,pixels,Usage\n" + _row(pixels=" ".join(["256"] + ["1"] * 2303)), r"line 2: pixel 1 value 256 is outside 0..255"),
    ("emotion,pixels,Usage\n" + _row(pixels=" ".join(["-1"] + ["1"] * 2303)), r"line 2: pixel 1 '-1' is not an integer"),
    ("emotion,pixels,Usage\n" + _row() + _row(label="7"), r"line 3: emotion 7 is outside 0..6"),
    ("emotion,pixels,Usage\n" + _row(label="a"), r"line 2: emotion 'a' is not an integer"),
    ("emotion,pixels,Usage\n" + _row(label="--3"), r"line 2: emotion '--3' is not an integer"),
    ("emotion,pixels,Usage\n" + _row(label="+7"), r"line 2: emotion \+7 is outside 0..6"),
    ("emotion,pixels,Usage\n" + _row(label="3.0"), r"line 2: emotion '3.0' is not an integer"),
    ("emotion,pixels,Usage\n" + _row(usage="Test"), r"line 2: unknown Usage 'Test'"),
    ("emotion,pixels,Usage\n" + "3,1 2 3\n", r"line 2: expected 3 fields, found 2"),
    ("emotion,pixels,Usage\n" + _row() * 2 + _row(pixels=" ".join(["1"] * 70000)) + _row(),
     r"line 4: not a FER2013 row \(field larger than field limit"),
    ("", r"file is empty"),
    ("emotion,pixels,Usage\n", r"no data rows"),
]


@pytest.mark.parametrize("text,message", BAD)
def test_malformed_csv_errors(tmp_path, cache_dir, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(DatasetError, match=message):
        load_fer2013(path)
    assert not cache_dir.exists() or not any(cache_dir.iterdir())  # nothing cached from a failed load


@pytest.mark.parametrize("damage", ["truncate", "corrupt"])
def test_bad_gzip(tmp_path, synth_csv, damage, cache_dir):
    blob = gzip.compress(synth_csv.read_bytes())
    if damage == "truncate":
        blob = blob[: len(blob) // 2]
    else:
        blob = blob[:40] + bytes(b ^ 0xFF for b in blob[40:400]) + blob[400:]
    path = tmp_path / "bad.csv.gz"
    path.write_bytes(blob)
    with pytest.raises(DatasetError, match="truncated or corrupt gzip"):
        load_fer2013(path)
    assert not cache_dir.exists() or not any(cache_dir.iterdir())


def test_cache_roundtrip_and_rebuild(synth_csv, cache_dir, monkeypatch):
    import datasets.cache as cache_mod
    parses = []
    real = cache_mod.load_csv_uncached
    monkeypatch.setattr(cache_mod, "load_csv_uncached", lambda p: (parses.append(p), real(p))[1])
    first = load_fer2013(synth_csv)
    files = list(cache_dir.iterdir())
    assert len(files) == 1 and files[0].suffix == ".npz" and first.source_hash[:24] in files[0].name
    second = load_fer2013(synth_csv)
    assert len(parses) == 1, "the second load is a cache hit, not a parse"
    np.testing.assert_array_equal(first.images, second.images)
    assert second.source_hash == first.source_hash
    files[0].write_bytes(b"not a zip")  # a damaged cache is rebuilt, not trusted
    third = load_fer2013(synth_csv)
    assert len(parses) == 2
    np.testing.assert_array_equal(first.images, third.images)
    assert sorted(cache_dir.iterdir()) == files, "no temporary file left beside the cache"


def test_image_folders(tmp_path, synth_arrays):
    images, labels, usage = synth_arrays
    root = tmp_path / "fer"
    names = {0: "train", 1: "val", 2: "test"}
    for i in range(21):
        d = root / names[int(usage[i])] / EMOTIONS[int(labels[i])]
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(images[i]).save(d / f"{i:03d}.png")
    fer = load_dataset(root)
    assert len(fer) == 21 and fer.images.dtype == np.uint8
    got = {(int(lab), int(u), img.tobytes()) for img, lab, u in zip(fer.images, fer.labels, fer.usage)}
    want = {(int(lab), int(u), img.tobytes()) for img, lab, u in zip(images[:21], labels[:21], usage[:21])}
    assert got == want
    for d in sorted(root.glob("*/happy")):  # the synonyms every emotion-folder reader takes
        d.rename(d.parent / "03_Happiness")
    assert {(int(lab), int(u), img.tobytes()) for img, lab, u in
            zip(*(getattr(load_dataset(root), k) for k in ("images", "labels", "usage")))} == want
    (root / "train" / "contempt").mkdir()
    Image.fromarray(images[0]).save(root / "train" / "contempt" / "c.png")
    with pytest.raises(DatasetError, match="unknown split or emotion folder.*train/contempt"):
        load_image_folders(root)
    (root / "train" / "contempt" / "c.png").unlink()
    (root / "train" / "contempt").rmdir()
    bad = root / "train" / "happy" / "zz_broken.png"
    bad.parent.mkdir(parents=True, exist_ok=True)
    bad.write_bytes(b"\x89PNG broken")
    with pytest.raises(DatasetError, match="zz_broken.png: unreadable image"):
        load_image_folders(root)


def test_cli_info_json_and_table(synth_csv, capsys, cache_dir):
    assert datasets_main(["info", str(synth_csv), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["rows"] == 210 and sum(out["counts"]["PrivateTest"].values()) == 21
    assert datasets_main(["info", str(synth_csv)]) == 0
    assert "PrivateTest" in capsys.readouterr().out


def test_cli_errors_exit_2(tmp_path, capsys, cache_dir):
    bad = tmp_path / "bad.csv"
    bad.write_text("emotion,pixels,Usage\n" + _row(label="9"))
    assert datasets_main(["info", str(bad)]) == 2
    assert "line 2: emotion 9 is outside 0..6" in capsys.readouterr().err
    long_line = tmp_path / "long.csv"  # a field past Python csv's 131,072-character limit
    long_line.write_text("emotion,pixels,Usage\n" + _row() + _row(pixels=" ".join(["7"] * 70000)))
    assert datasets_main(["info", str(long_line)]) == 2
    assert "line 3: not a FER2013 row" in capsys.readouterr().err
    assert datasets_main(["info", str(tmp_path / "missing.csv")]) == 2
    assert "missing.csv" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        datasets_main(["info"])
    assert e.value.code == 2


def test_cli_synth(tmp_path, cache_dir):
    out = tmp_path / "s.csv"
    assert datasets_main(["synth", str(out), "--rows", "70", "--seed", "3"]) == 0
    fer = load_fer2013(out)
    assert len(fer) == 70 and np.bincount(fer.labels).tolist() == [10] * 7


@pytest.mark.realdata
def test_real_fer2013_counts(real_csv, tmp_path):
    fer = load_fer2013(real_csv, cache_dir=tmp_path)
    assert len(fer) == 35887
    counts = fer.counts()
    assert [sum(counts[u].values()) for u in USAGES] == [28709, 3589, 3589]
    assert np.bincount(fer.labels).tolist() == [4953, 547, 5121, 8989, 6077, 4002, 6198]
    assert fer.images.shape == (35887, 48, 48)
    assert fer.images[0, 0, :4].tolist() == [70, 80, 82, 72]


def test_atomic_path_leaves_nothing_half_written(tmp_path):
    from datasets.atomic import atomic_path
    target = tmp_path / "out" / "x.csv"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            assert tmp.suffix == ".csv" and tmp.parent == target.parent
            tmp.write_text("partial")
            raise RuntimeError("interrupted")
    assert not target.exists() and list(target.parent.iterdir()) == []
    with atomic_path(target) as tmp:
        tmp.write_text("whole")
    assert target.read_text() == "whole" and list(target.parent.iterdir()) == [target]


def test_info_json_holds_the_files_sha256(synth_csv, capsys, cache_dir):
    from datasets import file_sha256
    assert datasets_main(["info", str(synth_csv), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["sha256"] == file_sha256(synth_csv)


def test_info_starts_without_the_heavy_stages(synth_csv, tmp_path):
    """`python -m datasets info` needs numpy and the parser: no masking, dlib, scikit-learn or TensorFlow."""
    import subprocess
    import sys
    code = ("import sys, runpy; sys.argv = ['datasets', 'info', sys.argv[1], '--cache-dir', sys.argv[2]]\n"
            "try:\n    runpy.run_module('datasets', run_name='__main__')\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('masking', 'dlib', 'sklearn', 'tensorflow', 'scipy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code, str(synth_csv), str(tmp_path)], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parent.parent, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_a_bug_keeps_its_traceback(synth_csv, monkeypatch):
    """Only bad input becomes `error: ...` and exit 2; a ValueError from a bug propagates."""
    import datasets.__main__ as cli
    def bug(*a, **k):
        raise ValueError("a bug, not bad input")
    monkeypatch.setattr(cli, "load_dataset", bug)
    with pytest.raises(ValueError, match="a bug"):
        datasets_main(["info", str(synth_csv)])
