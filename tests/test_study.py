"""Studies: seeds x models as run folders, summarised with their spread, on the local engine and on Ray
(one machine, a two-node cluster on one machine, a worker killed mid-run)."""
from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from experiments.studies import summary
from experiments.study import main as study_main, parse_args
from raynodes import children, local_raylets

ray = pytest.importorskip("ray")  # the [cluster] extra, installed by [test]


_SHARED: dict = {}


@pytest.fixture(scope="module", autouse=True)
def _one_cache_for_the_studies(shared_cache):
    """The studies here mask the same synthetic rows: one cache (content-keyed) for all of them."""
    _SHARED["cache"] = shared_cache


def _args(synth_csv, out, *extra, cache=None):
    cache = cache or _SHARED.get("cache") or out.parent / "cache"
    return ["clean", "masked", "--profile", "smoke", "--data", str(synth_csv), "--cache-dir", str(cache),
            "--workers", "1", "--no-report", "--test-mask-types", "surgical", "--test-mask-fits", "nose", "--out", str(out),
            *extra]


def _per_seed(out: Path) -> dict:
    study = json.loads((out / "study.json").read_text())
    return {(c["train"], c["test"]): c["accuracy"]["per_seed"] for c in study["cells"]}


@pytest.fixture(scope="module")
def one_seed_study(synth_csv, tmp_path_factory, shared_cache):
    """The quick suite's study: one seed on the local engine, with the run's report."""
    out = tmp_path_factory.mktemp("study") / "one"
    args = [a for a in _args(synth_csv, out, "--seeds", "0", "--cpus-per-run", "1", cache=shared_cache)
            if a != "--no-report"]
    assert study_main(args) == 0
    return out


@pytest.fixture(scope="module")
def local_study(synth_csv, tmp_path_factory):
    """Two seeds on the local engine, float32, with the default thread count (the Ray test's twin)."""
    out = tmp_path_factory.mktemp("study") / "local"
    assert study_main(_args(synth_csv, out, "--seeds", "0", "1", "--precision", "float32")) == 0
    return out


def test_one_seed_study_writes_its_run_with_report_summary_and_study_report(one_seed_study):
    run = one_seed_study / "maskfer_se" / "seed0"
    config = json.loads((run / "config.json").read_text())
    assert config["config"]["train"]["seed"] == 0 and config["threads"] == {"intra_op": 1, "inter_op": 1}
    assert (run / "report.html").is_file() and (run / "masked" / "model.keras").is_file()
    study = json.loads((one_seed_study / "study.json").read_text())
    assert [(r["model"], r["seed"]) for r in study["runs"]] == [("maskfer_se", 0)]
    metrics = json.loads((run / "metrics.json").read_text())
    assert study["runs"][0]["wall_seconds"] > 0
    for c in study["cells"]:  # one seed: its figure, no spread
        assert c["accuracy"]["sd"] is None and c["accuracy"]["per_seed"]["0"] == next(
            r["accuracy"] for r in metrics["results"] if (r["train"], r["test"]) == (c["train"], c["test"]))
    assert {e["effect"] for e in study["effects"]} == {"mask_cost", "masked_gain", "masked_gain_held_out",
                                                      "masked_held_out_loss"}
    html = (one_seed_study / "report.html").read_text()
    assert "masks cost the clean model" in html and "one seed" in html and "on masks it never saw" in html


def test_rerunning_a_study_redoes_no_finished_run(one_seed_study, synth_csv, shared_cache, monkeypatch, capsys):
    import experiments.studies.study as study_mod
    monkeypatch.setitem(study_mod.ENGINES, "local", lambda specs, *a, **k: iter(()) if not specs else
                        pytest.fail(f"runs redone: {specs}"))
    before = (one_seed_study / "maskfer_se" / "seed0" / "report.html").stat().st_mtime_ns
    recorded = json.loads((one_seed_study / "study.json").read_text())["runs"]
    args = [a for a in _args(synth_csv, one_seed_study, "--seeds", "0", "--cpus-per-run", "1", cache=shared_cache)
            if a != "--no-report"]
    assert study_main(args) == 0
    assert capsys.readouterr().out.count("finished earlier with the same settings") == 1
    assert (one_seed_study / "maskfer_se" / "seed0" / "report.html").stat().st_mtime_ns == before, "no report redone"
    again = json.loads((one_seed_study / "study.json").read_text())["runs"]
    assert again == recorded and again[0]["node"], "the wall time and node recorded when the run finished are kept"


@pytest.mark.slow
def test_a_run_scored_by_older_renderers_or_missing_a_variant_is_run_again_reusing_its_models(
        one_seed_study, synth_csv, shared_cache, tmp_path, capsys):
    """A study resumes honestly: a finished run whose conditions were drawn by another version of the renderers
    (its mask keys differ from today's), or that lacks a variant the study now asks for (flat), is run again with
    its finished models reused, not retrained (the same model files), and is scored under today's conditions.
    The validation table and the ranking rule reach study.json."""
    import hashlib
    import shutil
    study = tmp_path / "study"
    shutil.copytree(one_seed_study, study)
    run = study / "maskfer_se" / "seed0"
    digest = {v: hashlib.sha256((run / v / "model.keras").read_bytes()).hexdigest() for v in ("clean", "masked")}
    metrics = json.loads((run / "metrics.json").read_text())
    metrics["mask_keys"]["masked:held-out"]["photo_version"] = 0  # as an older photo renderer drew it
    (run / "metrics.json").write_text(json.dumps(metrics))
    base = [a for a in _args(synth_csv, study, "--seeds", "0", "--cpus-per-run", "1", cache=shared_cache)]
    assert study_main(base) == 0
    assert "finished earlier with the same settings" not in capsys.readouterr().out.split("study:")[0]
    again = json.loads((run / "metrics.json").read_text())
    assert again["mask_keys"]["masked:held-out"]["photo_version"] != 0, "scored again under today's renderer"
    for v, d in digest.items():
        assert hashlib.sha256((run / v / "model.keras").read_bytes()).hexdigest() == d, f"{v}: reused, not retrained"
    assert study_main([*base[:2], "flat", *base[2:]]) == 0
    assert (run / "flat" / "model.keras").is_file() and {r["train"] for r in json.loads(
        (run / "metrics.json").read_text())["results"]} == {"majority", "clean", "masked", "flat"}
    for v, d in digest.items():
        assert hashlib.sha256((run / v / "model.keras").read_bytes()).hexdigest() == d
    summary_ = json.loads((study / "study.json").read_text())
    assert summary_["validation"] and summary_["ranking_rule"] and summary_["roles"]["test"]["families"] == ["photo"]
    assert [(e["model"], e["train"]) for e in summary_["ranking"]] == [("maskfer_se", "masked")]


@pytest.mark.slow
def test_local_study_writes_runs_summary_and_report(local_study):
    for seed in (0, 1):
        run = local_study / "maskfer_se" / f"seed{seed}"
        config = json.loads((run / "config.json").read_text())
        assert config["config"]["train"]["seed"] == seed and config["threads"] == {"intra_op": 1, "inter_op": 1}
        assert (run / "clean" / "model.keras").is_file() and (run / "metrics.json").is_file()
    study = json.loads((local_study / "study.json").read_text())
    assert [(r["model"], r["seed"]) for r in study["runs"]] == [("maskfer_se", 0), ("maskfer_se", 1)]
    assert {(c["train"], c["test"]) for c in study["cells"]} == {
        (t, s) for t in ("majority", "clean", "masked") for s in ("clean", "masked", "masked:rigid", "masked:surgical",
                                                                  "masked@nose", "masked:held-out",
                                                                  "masked:held-out@nose")}
    for c in study["cells"]:  # each cell's seeds are the runs' own figures
        for seed, value in c["accuracy"]["per_seed"].items():
            metrics = json.loads((local_study / "maskfer_se" / f"seed{seed}" / "metrics.json").read_text())
            assert value == next(r["accuracy"] for r in metrics["results"]
                                 if (r["train"], r["test"]) == (c["train"], c["test"]))
    assert {e["effect"] for e in study["effects"]} == {"mask_cost", "masked_gain", "masked_gain_held_out",
                                                      "masked_held_out_loss"}
    html = (local_study / "report.html").read_text()
    assert "masks cost the clean model" in html and "maskfer_se/seed1" in html and "paired t" in html


@pytest.mark.slow
def test_study_report_in_a_browser(local_study, tmp_path):
    """The two-seed study's report in headless Chromium (`test_report_browser.check_page`)."""
    from test_report_browser import check_page
    check_page(local_study / "report.html", tmp_path, ("masks cost the clean model", "on masks it never saw"))


@pytest.mark.slow
def test_ray_gives_the_same_per_seed_accuracies(local_study, synth_csv, tmp_path, ray_session):
    """The same two-seed float32 study, defaults for the thread count on both engines: equal per-seed figures."""
    out = tmp_path / "ray"
    assert study_main(_args(synth_csv, out, "--seeds", "0", "1", "--precision", "float32", "--engine", "ray")) == 0
    assert _per_seed(out) == _per_seed(local_study)
    threads = {json.loads((s / m / f"seed{k}" / "config.json").read_text())["threads"]["intra_op"]
               for s in (out, local_study) for m in ("maskfer_se",) for k in (0, 1)}
    assert threads == {1}, "the thread count each run trained with, recorded, the same on both engines"


@pytest.mark.slow
def test_two_node_cluster_runs_land_on_both_nodes(synth_csv, tmp_path, no_ray_session):
    from ray.cluster_utils import Cluster
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    try:
        cluster.add_node(num_cpus=1)
        ray.init(address=cluster.address)
        out = tmp_path / "cluster"
        assert study_main(_args(synth_csv, out, "--seeds", "0", "1", "--cpus-per-run", "1", "--engine", "ray")) == 0
        study = json.loads((out / "study.json").read_text())
        nodes = {r["node"] for r in study["runs"]}
        assert nodes == {n["NodeID"] for n in ray.nodes()} and len(nodes) == 2
        for r in study["runs"]:  # each folder came back whole; the worker's own folder is gone
            config = json.loads((out / r["folder"] / "config.json").read_text())
            assert not Path(config["config"]["out"]).exists() and (out / r["folder"] / "masked" / "model.keras").is_file()
    finally:
        ray.shutdown()
        cluster.shutdown()


@pytest.mark.slow
def test_a_worker_killed_mid_run_is_retried(local_study, synth_csv, tmp_path, ray_session, capsys):
    """A Ray worker killed mid-run: the run is retried, and its figures are those of the same seed unkilled."""
    out = tmp_path / "killed"
    killed = []

    raylets = local_raylets()  # this test's Ray: only its raylet's workers are candidates

    def killer():
        deadline = time.time() + 120
        while not killed and time.time() < deadline:
            for pid in children(raylets, b"ray::_ray_execute"):
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                break
            time.sleep(0.2)
    thread = threading.Thread(target=killer)
    thread.start()
    rc = study_main(_args(synth_csv, out, "--seeds", "1", "--precision", "float32", "--engine", "ray"))
    thread.join()
    assert killed, "no running worker was found to kill"
    assert rc == 0 and json.loads((out / "study.json").read_text())["runs"][0]["seed"] == 1
    unkilled = {k: {"1": v["1"]} for k, v in _per_seed(local_study).items()}
    assert _per_seed(out) == unkilled


def test_numbers_by_hand():
    """Two seeds: mean, sample sd, t interval (t(0.975, 1) = 12.7062) and the seed-paired effect."""
    def metrics(cc, cm, mm):
        return {"results": [{"train": "clean", "test": "clean", "accuracy": cc, "macro_f1": cc},
                            {"train": "clean", "test": "masked", "accuracy": cm, "macro_f1": cm},
                            {"train": "masked", "test": "masked", "accuracy": mm, "macro_f1": mm}]}
    runs = {("m", 0): metrics(0.60, 0.30, 0.50), ("m", 1): metrics(0.64, 0.36, 0.52)}
    cell = next(c for c in summary.cells(runs) if (c["train"], c["test"]) == ("clean", "clean"))["accuracy"]
    assert cell["per_seed"] == {"0": 0.60, "1": 0.64} and cell["mean"] == pytest.approx(0.62)
    assert cell["sd"] == pytest.approx(0.0282843, abs=1e-6)
    assert cell["ci95"] == pytest.approx([0.62 - 0.254124, 0.62 + 0.254124], abs=1e-5)
    cost = next(e for e in summary.effects(runs) if e["effect"] == "mask_cost")
    assert cost["per_seed"] == pytest.approx({"0": 0.30, "1": 0.28}) and cost["mean"] == pytest.approx(0.29)
    assert cost["sd"] == pytest.approx(0.0141421, abs=1e-6)
    assert cost["ci95"] == pytest.approx([0.29 - 0.127062, 0.29 + 0.127062], abs=1e-5)
    gain = next(e for e in summary.effects(runs) if e["effect"] == "masked_gain")
    assert gain["per_seed"] == pytest.approx({"0": 0.20, "1": 0.16})
    one = summary.spread({0: 0.5})
    assert one["sd"] is None and one["ci95"] is None  # one seed has no spread


@pytest.mark.parametrize("args, needle", [
    (["--seeds"], "--seeds needs at least one seed"),
    (["--seeds", "1", "1"], "--seeds are repeated"),
    (["--models", "vgg99"], "--models 'vgg99' is unknown"),
    (["--seed", "3"], "--seed is the study's"),
    (["--address", "x:1"], "--address needs --engine ray"),
])
def test_bad_study_options_exit_2(args, needle, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        parse_args(["clean", "--out", str(tmp_path / "s"), *args])
    assert e.value.code == 2 and needle in capsys.readouterr().err


def test_ray_engine_without_ray_names_the_extra(tmp_path, monkeypatch, capsys):
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a))
    assert study_main(["clean", "--profile", "smoke", "--out", str(tmp_path / "s"), "--engine", "ray"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install -e '.[cluster]'" in err[0]


DRIVER = '''
import os, sys, time
import multiprocessing as mp
from concurrent.futures import ProcessPoolExecutor
from experiments.studies.watch import exit_with_driver

def work(pidfile, driver):
    exit_with_driver(driver, poll=0.1)
    with open(pidfile + ".tmp", "w") as f:
        f.write(str(os.getpid()))
    os.rename(pidfile + ".tmp", pidfile)
    time.sleep(120)  # a run that would train on

if __name__ == "__main__":
    with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as pool:
        pool.submit(work, sys.argv[1], os.getpid()).result()
'''


def _alive(pid: int) -> bool:
    try:
        state = next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("State"))
    except (OSError, StopIteration):
        return False
    return "zombie" not in state


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")
def test_a_killed_driver_takes_its_local_worker_with_it(tmp_path):
    """SIGKILL on a study's driver (no handler can run) still ends the spawned worker that trains its run."""
    import subprocess
    import sys
    script, pidfile = tmp_path / "driver.py", tmp_path / "worker.pid"
    script.write_text(DRIVER)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    driver = subprocess.Popen([sys.executable, str(script), str(pidfile)], env=env)
    try:
        deadline = time.time() + 60
        while not pidfile.exists() and time.time() < deadline:
            time.sleep(0.1)
        worker = int(pidfile.read_text())
        assert _alive(worker)
        driver.kill()
        driver.wait()
        deadline = time.time() + 10
        while _alive(worker) and time.time() < deadline:
            time.sleep(0.1)
        assert not _alive(worker), "the worker outlived its driver"
    finally:
        driver.kill()


@pytest.mark.slow
def test_a_local_run_stopped_midway_resumes_from_its_work_folder(synth_csv, tmp_path):
    """A stopped local study leaves its run's work folder; rerun, the study keeps what that run finished
    (here its clean model), trains the rest, places the run and removes the work folder. A work folder left
    by other settings is redone instead."""
    from experiments.run import main as run_main
    out = tmp_path / "study"
    work = out / "maskfer_se" / ".seed0.partial"
    common = ["--profile", "smoke", "--data", str(synth_csv), "--cache-dir", str(_SHARED["cache"]), "--workers", "1",
              "--no-report", "--test-mask-types", "surgical", "--seed", "0"]
    assert run_main(["clean", *common, "--out", str(work)]) == 0  # what the stopped study had finished
    made = (work / "clean" / "model.keras").read_bytes(), (work / "clean" / "done.json").read_text()
    assert study_main(_args(synth_csv, out, "--seeds", "0", "--cpus-per-run", "1")) == 0
    final = out / "maskfer_se" / "seed0"
    assert ((final / "clean" / "model.keras").read_bytes(), (final / "clean" / "done.json").read_text()) == made
    assert (final / "masked" / "model.keras").is_file() and (final / "metrics.json").is_file()
    assert not work.exists()

    stale = tmp_path / "stale"
    stale_work = stale / "maskfer_se" / ".seed0.partial"
    assert run_main(["clean", *common, "--epochs", "2", "--out", str(stale_work)]) == 0  # other settings
    assert study_main(_args(synth_csv, stale, "--seeds", "0", "--cpus-per-run", "1")) == 0
    config = json.loads((stale / "maskfer_se" / "seed0" / "config.json").read_text())
    assert config["config"]["train"]["epochs"] == 1 and not stale_work.exists()


@pytest.mark.slow
def test_a_failed_run_is_reported_when_it_fails(synth_csv, tmp_path, monkeypatch, capsys):
    """Seed 0 cannot start (its work folder's name is taken by a file): its failure is on stderr before seed 1
    is placed, seed 1 still finishes, and the study exits 1 naming the failed run."""
    import experiments.studies.study as study_mod
    out = tmp_path / "failing"
    (out / "maskfer_se").mkdir(parents=True)
    (out / "maskfer_se" / ".seed0.partial").write_text("not a folder")
    real_place, seen = study_mod._place, []

    def place(result, folder):
        seen.append((folder.name, "maskfer_se seed 0 FAILED" in capsys.readouterr().err))
        return real_place(result, folder)
    monkeypatch.setattr(study_mod, "_place", place)
    assert study_main(_args(synth_csv, out, "--seeds", "0", "1")) == 1
    assert seen == [("seed1", True)], "the failure was reported before the other run was placed"
    assert (out / "maskfer_se" / "seed1" / "metrics.json").is_file() and not (out / "study.json").exists()
