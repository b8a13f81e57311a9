"""A cluster that works like one: photos reach workers as bytes (or URIs every node reads), shards stream, Ray is
joined or started as asked and left as found, and the README's recipe works on separate `ray start` processes."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage import data

import datasets.prepare as prepare_mod
import datasets.raycluster as raycluster
from datasets.__main__ import main as datasets_main
from datasets.engine import Engine
from datasets.photos import PhotoRef, PhotoUnreachable
from datasets.prepared import SHARD_ARRAYS, read_manifest, read_shards
from datasets.synth import write_photo_folder
from experiments.studies.placing import replace_folder
from experiments.studies.study import StudyConfig, _place
from experiments.studies.engines import Finished
from experiments.config import RunConfig
from raynodes import RealCluster, can_unshare, clean_env, marked, new_tag, wait_gone

ray = pytest.importorskip("ray")
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """~90 photos under hidden/photos: LFW faces pasted into 256 px photos, 48 px drawn faces, the astronaut
    and one unreadable file (the `hidden` folder is what a worker node of the real cluster cannot see)."""
    root = tmp_path_factory.mktemp("cluster") / "hidden" / "photos"
    lfw = (data.lfw_subset()[:60] * 255).astype(np.uint8)
    write_photo_folder(root, lfw[:40], np.arange(40) % 7, canvas=(256, 256), seed=3)
    for i, face in enumerate(lfw[40:60]):
        (root / "neutral").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / "neutral" / f"lfw{i}.png"), face)
    cv2.imwrite(str(root / "happy" / "astronaut.jpg"), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    (root / "sad" / "broken.png").write_bytes(b"not a picture")
    return root


@pytest.fixture(scope="module")
def local_set(photos, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("local") / "prep"
    prepare_mod.prepare_photos(photos, out, shard_rows=16, engine=Engine("local", 2))
    return out


def _same_set(a: Path, b: Path) -> bool:
    """The same rows, labels, splits, statuses and pixels (however they are cut into shards)."""
    x, y = read_shards(a), read_shards(b)
    return all(np.array_equal(x[k], y[k]) for k in SHARD_ARRAYS) and read_manifest(a)["counts"] == read_manifest(b)["counts"]


# ------------------------------------------------------------------ streaming and photos as bytes or URIs

def test_every_shard_streams_through_one_map(photos, local_set, tmp_path, monkeypatch):
    """All shards' chunks go through one stream (not one map per shard), and each shard is written when its
    chunks are in, in whatever order they finish."""
    calls, order, real_stream, real_save = [], [], prepare_mod.stream, prepare_mod._save_shard

    def stream(fn, tasks, engine, *a, **k):
        tasks = list(tasks)
        calls.append(len(tasks))
        return real_stream(fn, tasks, engine, *a, **k)
    monkeypatch.setattr(prepare_mod, "stream", stream)
    monkeypatch.setattr(prepare_mod, "_save_shard", lambda path, *a: (order.append(path.name), real_save(path, *a)))
    out = tmp_path / "streamed"
    prepare_mod.prepare_photos(photos, out, shard_rows=16, chunk=8, engine=Engine("local", 2))
    n = read_manifest(out)["listed"]
    sizes = [16] * (n // 16) + ([n % 16] if n % 16 else [])
    assert calls == [sum(-(-s // 8) for s in sizes)], "one stream, every chunk of every shard"
    assert sorted(order) == [f"shard-{k:05d}.npz" for k in range(-(-n // 16))]
    assert _same_set(out, local_set)


def test_a_file_uri_is_read_through_pyarrow(photos, local_set, tmp_path):
    out = tmp_path / "uri"
    assert datasets_main(["prepare", photos.as_uri(), "--out", str(out), "--workers", "2"]) == 0
    assert _same_set(out, local_set) and read_manifest(out)["source"] == photos.as_uri()
    assert read_manifest(out)["unreadable_files"] == ["sad/broken.png"]


def test_a_uri_a_worker_cannot_open_names_the_file_and_the_node(tmp_path):
    uri = (tmp_path / "gone.png").as_uri()
    with pytest.raises(PhotoUnreachable, match=r"gone\.png: listed by the driver but node .+ cannot read it"):
        PhotoRef("gone.png", None, uri).read()


@pytest.fixture
def s3_photos(photos, monkeypatch):
    """The photos on an S3-compatible server (moto) on the loopback address, as a URI whose query carries the
    endpoint: (URI, the local folder). Credentials are the environment's (set before any Ray starts)."""
    moto_server = pytest.importorskip("moto.server")
    from pyarrow import fs
    for k, v in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                 ("AWS_DEFAULT_REGION", "us-east-1"), ("AWS_EC2_METADATA_DISABLED", "true")):
        monkeypatch.setenv(k, v)
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"endpoint_override={host}:{port}&scheme=http&region=us-east-1"
        s3 = fs.S3FileSystem(endpoint_override=f"{host}:{port}", scheme="http", region="us-east-1",
                             allow_bucket_creation=True)
        s3.create_dir("faces")
        for p in sorted(photos.rglob("*")):
            if p.is_file():
                with s3.open_output_stream(f"faces/set/{p.relative_to(photos).as_posix()}") as f:
                    f.write(p.read_bytes())
        yield f"s3://faces/set?{endpoint}", photos
    finally:
        server.stop()


def test_s3_photos_keep_their_endpoint_and_give_the_local_arrays(s3_photos, local_set, tmp_path, capsys):
    """prepare and `masking images` on s3:// photos served on the loopback (moto) give the local arrays on the
    local engine: the URI's host, port and query reach the workers, and the listing's sizes and times make its
    hash (no request per photo)."""
    from datasets.folders import list_emotion_folders
    from datasets.photos import PhotoFolder
    from masking.__main__ import main as masking_main
    uri, photos = s3_photos
    src = PhotoFolder(uri)
    listing = list_emotion_folders(src)
    assert len(src._stamps) >= len(listing.files) and all(src.stamp(f)[0] > 0 for f in listing.files)
    ref = next(src.refs(listing.files[:1]))
    assert ref.uri == uri and "endpoint_override=127.0.0.1" in ref.uri and ref.read()
    out = tmp_path / "s3"
    assert datasets_main(["prepare", uri, "--out", str(out), "--workers", "2"]) == 0
    assert _same_set(out, local_set) and read_manifest(out)["unreadable_files"] == ["sad/broken.png"]
    for name, source in (("local", str(photos)), ("s3", uri)):
        assert masking_main(["images", source, str(tmp_path / f"masked-{name}"), "--workers", "2"]) == 0, \
            capsys.readouterr().err
    local, remote = tmp_path / "masked-local", tmp_path / "masked-s3"
    names = sorted(p.relative_to(local) for p in local.rglob("*") if p.is_file())
    assert names and names == sorted(p.relative_to(remote) for p in remote.rglob("*") if p.is_file())
    assert all((local / n).read_bytes() == (remote / n).read_bytes() for n in names)


def test_credentials_in_a_uri_never_leave_the_driver_in_a_message(s3_photos, local_set, tmp_path, capsys):
    """A URI with credentials (s3://KEY:SECRET@bucket/...): prepare works, and the secret is in no message, no log
    line, no record of the prepared set and no photo reference a worker gets (those carry pyarrow's filesystem,
    whose options hold the credentials, and the redacted URI); a failed read says s3://***@... ."""
    from datasets.photos import PhotoFolder, PhotoRef, PhotoUnreachable, redact
    from datasets.folders import list_emotion_folders
    uri, _ = s3_photos
    secret_uri = uri.replace("s3://", "s3://AKIAEXAMPLEKEY:Zq9TopSecretValue@")
    assert redact(secret_uri).startswith("s3://***@faces/set?") and "Zq9" not in redact(secret_uri)
    assert "Zq9" not in redact("s3://faces/x?secret_key=Zq9TopSecretValue&region=us-east-1")
    src = PhotoFolder(secret_uri)
    ref = next(src.refs(list_emotion_folders(src).files[:1]))
    assert "Zq9" not in ref.uri and "AKIAEXAMPLE" not in ref.uri and "Zq9" not in repr(ref) and ref.read()
    out = tmp_path / "prepared"
    assert datasets_main(["prepare", secret_uri, "--out", str(out), "--workers", "2"]) == 0
    said = capsys.readouterr()
    assert "Zq9" not in said.out + said.err and _same_set(out, local_set)
    assert all("Zq9" not in p.read_text(errors="ignore") for p in out.rglob("*") if p.suffix in (".json", ".csv"))
    gone = PhotoRef("gone.png", None, redact(secret_uri), "faces/set/gone.png", src.fs)
    with pytest.raises(PhotoUnreachable) as e:
        gone.read()
    assert "s3://***@faces/set" in str(e.value) and "Zq9" not in str(e.value)


@pytest.mark.slow
def test_s3_photos_on_ray_give_the_local_arrays(s3_photos, local_set, tmp_path, ray_session):
    uri, photos = s3_photos
    out = tmp_path / "s3ray"
    assert datasets_main(["prepare", uri, "--out", str(out), "--engine", "ray"]) == 0
    assert _same_set(out, local_set)
    from masking.__main__ import main as masking_main
    for name, source in (("local", str(photos)), ("s3", uri)):
        assert masking_main(["images", source, str(tmp_path / name), "--engine", "ray"]) == 0
    names = sorted(p.relative_to(tmp_path / "local") for p in (tmp_path / "local").rglob("*") if p.is_file())
    assert names and all((tmp_path / "local" / n).read_bytes() == (tmp_path / "s3" / n).read_bytes() for n in names)


def test_workers_get_bytes_not_paths(photos, local_set, tmp_path, monkeypatch):
    """The chunks a worker receives hold each photo's bytes and its name inside the folder, no driver path:
    moving the folder away after the driver read it changes nothing."""
    sent, real_stream = [], prepare_mod.stream
    moved = tmp_path / "moved"

    def stream(fn, tasks, engine, *a, **k):
        tasks = list(tasks)  # the driver has read every photo now
        photos.rename(moved)
        try:
            sent.extend(ref for refs, _ in tasks for ref in refs)
            yield from real_stream(fn, tasks, engine, *a, **k)
        finally:
            moved.rename(photos)
    monkeypatch.setattr(prepare_mod, "stream", stream)
    out = tmp_path / "bytes"
    prepare_mod.prepare_photos(photos, out, shard_rows=16, engine=Engine("local", 2))
    assert sent and all(str(photos) not in ref.name and ref.uri is None for ref in sent)
    assert all(ref.data for ref in sent if ref.name != "sad/broken.png")
    assert _same_set(out, local_set)


# ------------------------------------------------------------------ joining or starting Ray

def test_without_address_a_fresh_local_ray_never_a_recorded_one(photos, local_set, tmp_path, monkeypatch,
                                                                  no_ray_session):
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:9")  # what a crashed `ray start` leaves behind, to ray.init()
    out = tmp_path / "fresh"
    t = time.monotonic()
    assert datasets_main(["prepare", str(photos), "--out", str(out), "--engine", "ray"]) == 0
    assert time.monotonic() - t < 120 and _same_set(out, local_set)
    assert not ray.is_initialized(), "the command shut down the Ray it started"


def test_a_dead_address_is_one_line_after_a_bounded_wait(photos, tmp_path, monkeypatch, capsys, no_ray_session):
    monkeypatch.setattr(raycluster, "CONNECT_TIMEOUT", 1.0)
    dead = f"127.0.0.1:{__import__('raynodes').free_port()}"
    t = time.monotonic()
    assert datasets_main(["prepare", str(photos), "--out", str(tmp_path / "o"), "--engine", "ray",
                          "--address", dead]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert time.monotonic() - t < 30 and len(err) == 1
    assert err[0].startswith(f"error: --address {dead}: no Ray cluster answers") and "ray start --head" in err[0]
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_address_auto_reads_the_recorded_cluster_and_says_when_there_is_none(tmp_path, monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path))  # where `ray start` records its address: nothing there
    with pytest.raises(raycluster.ClusterError, match="--address auto: no Ray cluster was started on this machine"):
        raycluster.wait_for("auto", 1)
    dead = f"127.0.0.1:{__import__('raynodes').free_port()}"
    (tmp_path / "ray").mkdir()
    (tmp_path / "ray" / "ray_current_cluster").write_text(dead)  # a `ray start` that ended without `ray stop`
    with pytest.raises(raycluster.ClusterError, match=f"--address auto: no Ray cluster answers at {dead}"):
        raycluster.wait_for("auto", 1)


def test_address_needs_the_ray_engine(photos, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        datasets_main(["prepare", str(photos), "--out", str(tmp_path / "o"), "--address", "h:1"])
    assert e.value.code == 2 and "--address needs --engine ray" in capsys.readouterr().err


def test_a_connected_ray_is_left_connected(ray_session):
    with raycluster.session() as started:
        assert not started
    assert ray.is_initialized()


# ------------------------------------------------------------------ studies: placing, defaults

def test_a_folder_is_placed_over_an_old_one_in_one_rename(tmp_path, monkeypatch):
    new, target = tmp_path / "new", tmp_path / "seed0"
    new.mkdir(), target.mkdir()
    (new / "metrics.json").write_text("new")
    (target / "metrics.json").write_text("old")
    monkeypatch.setattr(os, "rename", lambda *a: pytest.fail("two renames: the folder would be briefly absent"))
    replace_folder(new, target)
    assert (target / "metrics.json").read_text() == "new" and not new.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["seed0"]


def test_the_local_engine_moves_its_work_folder(tmp_path):
    work, final = tmp_path / ".seed0.partial", tmp_path / "seed0"
    work.mkdir()
    (work / "metrics.json").write_text("{}")
    inode = work.stat().st_ino
    _place(Finished(None, 1.0, "here", work), final)
    assert final.stat().st_ino == inode and not work.exists(), "renamed, not copied"


def test_cpus_per_run_defaults_to_one_on_both_engines(tmp_path):
    """One thread count for both engines (float32 sums depend on it); the local engine then runs one run per
    core at once."""
    base = RunConfig(out=str(tmp_path))
    ray_study, local_study = (StudyConfig(out=str(tmp_path), base=base, engine=e) for e in ("ray", "local"))
    assert ray_study.cpus_per_run == local_study.cpus_per_run == 1 and ray_study.run_config("maskfer_se", 0).threads == 1
    assert local_study.parallel == (os.cpu_count() or 1)
    assert StudyConfig(out=str(tmp_path), base=base, cpus_per_run=2).parallel == max(1, (os.cpu_count() or 1) // 2)
    assert StudyConfig(out=str(tmp_path), base=base, parallel=1, cpus_per_run=3).cpus_per_run == 3


# ------------------------------------------------------------------ clean ends (commands in their own process)

def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _command(args: list[str], tag: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", *args], cwd=ROOT, env=clean_env(tag), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


@pytest.mark.slow
def test_a_command_leaves_no_ray_process_behind_also_after_ctrl_c(photos, tmp_path):
    """The Ray a command starts is gone when it ends: after success, after Ctrl-C while Ray is starting, and
    after Ctrl-C while workers are busy (the processes are found by the command's tag: `raynodes.marked`)."""
    tag = new_tag()
    p = _command(["datasets", "prepare", str(photos), "--out", str(tmp_path / "a"), "--engine", "ray"], tag)
    assert p.wait(timeout=300) == 0, p.stderr.read()
    assert wait_gone(tag) == [], "Ray processes outlived the command"
    shutil.rmtree(tag, ignore_errors=True)
    for when, ready in (("starting", lambda pids: len(pids) > 2),
                        ("busy", lambda pids: any(_cmdline(q).startswith(b"ray::_call") for q in pids))):
        tag = new_tag()
        p = _command(["datasets", "prepare", str(photos), "--out", str(tmp_path / when), "--engine", "ray"], tag)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not ready(marked(tag)):
            time.sleep(0.05)
        p.send_signal(signal.SIGINT)
        assert p.wait(timeout=60) == 130, p.stderr.read()
        assert p.stderr.read().strip().splitlines()[-1] == "interrupted"
        assert wait_gone(tag) == [], f"Ray processes outlived Ctrl-C while {when}"
        assert not (tmp_path / when / "manifest.json").exists()
        shutil.rmtree(tag, ignore_errors=True)


# ------------------------------------------------------------------ the README's recipe: separate `ray start` processes

@pytest.fixture(scope="module")
def real_cluster(photos, tmp_path_factory):
    hidden = photos.parent if can_unshare() else None
    cluster = RealCluster(tmp_path_factory.mktemp("nodes"), worker_cpus=2, hide=hidden)
    try:
        cluster.wait_ready()
        yield cluster
    finally:
        assert cluster.stop() == [], "processes of the test cluster outlived it"


def _driver(cluster, args: list[str], token: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, env=cluster.env(token=token), capture_output=True,
                          text=True, timeout=600)


@pytest.mark.slow
def test_real_cluster_prepares_and_masks_photos_its_worker_cannot_see(real_cluster, photos, local_set, tmp_path):
    """Head (no CPUs) and worker as separate `ray start` processes with token authentication; the worker node
    does every task, in a mount namespace where the photo folder is an empty tmpfs."""
    if not can_unshare():
        pytest.skip("no mount namespaces here (unshare -m): the worker would see the driver's disk")
    out = tmp_path / "prep"
    r = _driver(real_cluster, ["datasets", "prepare", str(photos), "--out", str(out), "--engine", "ray",
                               "--address", real_cluster.address])
    assert r.returncode == 0, r.stderr[-3000:]
    assert _same_set(out, local_set)
    masked = {}
    for engine, extra in (("local", []), ("ray", ["--address", real_cluster.address])):
        o = tmp_path / f"masked-{engine}"
        r = _driver(real_cluster, ["masking", "images", str(photos / "happy"), str(o), "--engine", engine, *extra])
        assert r.returncode == 0, r.stderr[-3000:]
        masked[engine] = {p.name: p.read_bytes() for p in o.iterdir()}
    assert masked["ray"] == masked["local"] and "astronaut.jpg" in masked["ray"]
    r = _driver(real_cluster, ["datasets", "prepare", photos.as_uri(), "--out", str(tmp_path / "uri"), "--engine",
                               "ray", "--address", real_cluster.address])
    err = r.stderr.strip().splitlines()
    assert r.returncode == 2 and err[-1].startswith("error: file://") and "cannot read it" in err[-1]
    assert "node " in err[-1]


@pytest.mark.slow
def test_real_cluster_turns_away_a_driver_without_the_token_in_one_line(real_cluster, photos, tmp_path):
    r = _driver(real_cluster, ["datasets", "prepare", str(photos), "--out", str(tmp_path / "o"), "--engine", "ray",
                               "--address", real_cluster.address], token=False)
    err = [line for line in r.stderr.strip().splitlines() if line.startswith("error:")]
    assert r.returncode == 2 and len(err) == 1
    assert real_cluster.address in err[0] and "RAY_AUTH_TOKEN" in err[0] and "Traceback" not in r.stderr


@pytest.mark.slow
def test_real_cluster_runs_a_study(real_cluster, synth_csv, tmp_path):
    out = tmp_path / "study"
    r = _driver(real_cluster, ["experiments.study", "clean", "--profile", "smoke", "--data", str(synth_csv),
                               "--seeds", "0", "--out", str(out), "--no-report", "--test-mask-types", "surgical",
                               "--test-mask-fits", "nose", "--cache-dir", str(tmp_path / "c"), "--engine", "ray",
                               "--address", real_cluster.address])
    assert r.returncode == 0, r.stderr[-3000:]
    study = json.loads((out / "study.json").read_text())
    assert study["cpus_per_run"] == 1 and (out / "maskfer_se" / "seed0" / "clean" / "model.keras").is_file()
