"""Batches on a real Dask cluster: a ``dask scheduler`` and ``dask worker`` processes
started here on 127.0.0.1 (always killed at the end) write the same files as a local run;
a worker killed mid-batch is survived; a worker without the model and an unreachable
scheduler get one clear line."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from tests.conftest import REPO, disc_image

from golddigger.cli.main import main
from golddigger.errors import GoldDiggerError, ModelError
from golddigger.io.images import write_tiff

distributed = pytest.importorskip("distributed")
mrcfile = pytest.importorskip("mrcfile")
DASK = Path(sys.executable).with_name("dask")
pytestmark = pytest.mark.skipif(not DASK.exists(), reason="the `dask` command is missing")
PX = 0.5587


@pytest.fixture(scope="module")
def model(tiny_model) -> Path:
    return tiny_model


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("images")
    for i in range(5):
        write_tiff(folder / f"img{i}.tif", disc_image((260, 300), seed=i,
                                                      centres=((60.2, 70.7), (200, 150.5))), PX)
    with mrcfile.new(folder / "grid.mrc") as m:
        m.set_data(disc_image((300, 340), seed=9).astype(np.int16))
        m.voxel_size = PX * 10
    return folder


class Cluster:
    """A scheduler and workers as subprocesses of this test, on 127.0.0.1 only."""

    def __init__(self, folder: Path, n_workers: int) -> None:
        self.procs: list[subprocess.Popen] = []
        self.workers: list[subprocess.Popen] = []
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "src"), str(REPO)]),
                   OMP_NUM_THREADS="1")
        sfile = folder / "scheduler.json"
        self.log = open(folder / "cluster.log", "w")  # noqa: SIM115 - closed in stop()
        self.procs.append(self._start([str(DASK), "scheduler", "--host", "127.0.0.1",
                                       "--port", "0", "--no-dashboard", "--scheduler-file",
                                       str(sfile)], env))
        deadline = time.monotonic() + 90
        while not sfile.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        if not sfile.exists():
            self.stop()
            pytest.fail("the dask scheduler did not start within 90 s")
        time.sleep(0.3)
        self.address = json.loads(sfile.read_text())["address"]
        assert self.address.startswith("tcp://127.0.0.1:")
        for _ in range(n_workers):
            w = self._start([str(DASK), "worker", self.address, "--host", "127.0.0.1",
                             "--nthreads", "1", "--no-nanny", "--no-dashboard",
                             "--death-timeout", "60"], env)
            self.workers.append(w)
            self.procs.append(w)
        client = distributed.Client(self.address, timeout=30)
        try:
            client.wait_for_workers(n_workers, timeout=120)
        finally:
            client.close()

    def _start(self, argv: list[str], env: dict) -> subprocess.Popen:
        return subprocess.Popen(argv, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                start_new_session=True)

    def stop(self) -> None:
        for p in reversed(self.procs):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=30)
        self.log.close()


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path, 2)
    yield c
    c.stop()


def detect(*argv) -> int:
    return main(["detect", *map(str, argv), "-q"])


def outputs(folder: Path) -> dict[str, object]:
    """The CSVs' bytes and the RoiSets' members' bytes (zip headers carry the time)."""
    out: dict[str, object] = {}
    for p in sorted(folder.iterdir()):
        if p.suffix == ".csv":
            out[p.name] = p.read_bytes()
        elif p.suffix == ".zip":
            with zipfile.ZipFile(p) as z:
                out[p.name] = {n: z.read(n) for n in z.namelist()}
    return out


def test_cluster_run_writes_what_a_local_run_writes(cluster, model, images, tmp_path,
                                                    monkeypatch):
    # the MRC goes to the cluster in chunks (small thresholds stand for a huge image)
    from golddigger import distributed as gd_dist
    from golddigger.model import chunked

    monkeypatch.setattr(gd_dist, "_PROBE_BYTES", 0)
    monkeypatch.setattr(chunked, "CHUNK_ABOVE_PIXELS", 200 * 200)
    monkeypatch.setattr(chunked, "DEFAULT_CHUNK", 128)
    args = (images, "--model", model, "--threshold", "0.3")
    assert detect(*args, "-o", tmp_path / "local") == 0
    assert detect(*args, "-o", tmp_path / "dask", "--scheduler", cluster.address) == 0
    local, remote = outputs(tmp_path / "local"), outputs(tmp_path / "dask")
    assert sorted(local) == sorted(remote) and "summary.csv" in local
    assert local == remote
    assert len(local["grid.csv"].splitlines()) > 2  # found something
    # --resume on the cluster: nothing is redone, nothing changes
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "dask").iterdir()
              if p.is_file()}
    assert detect(*args, "-o", tmp_path / "dask", "--scheduler", cluster.address,
                  "--resume") == 0
    after = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "dask").iterdir()
             if p.is_file()}
    assert {k: v for k, v in after.items() if k != "summary.csv"} == \
        {k: v for k, v in before.items() if k != "summary.csv"}


def test_killed_worker_is_survived(cluster, model, images, tmp_path):
    from golddigger.batch import BatchOptions, run_batch
    from golddigger.distributed import run_batch_dask
    from golddigger.model.detector import Detector

    det = Detector.from_folder(model, threads=1)
    opts = BatchOptions(threshold=0.3)
    # more work per image so tasks are in flight when the worker dies
    big = tmp_path / "big"
    big.mkdir()
    for i in range(8):
        write_tiff(big / f"b{i}.tif", disc_image((700, 800), seed=20 + i), PX)
    paths = sorted(big.glob("*.tif"))
    killed = []
    client = distributed.Client(cluster.address, timeout=30)
    pids = client.run(os.getpid)  # worker address -> process id
    stop = threading.Event()

    def killer():  # SIGKILL the first worker seen running a task (polled: the tasks are
        # short, and the batch's progress calls may come only after they have all run)
        while not stop.is_set() and not killed:
            busy = [w for w, tasks in client.processing().items() if tasks]
            if busy:
                os.killpg(pids[busy[0]], signal.SIGKILL)
                killed.append(busy[0])
            stop.wait(0.005)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    try:
        result = run_batch_dask(paths, det, tmp_path / "dask", opts, client=client)
    finally:
        stop.set()
        thread.join(10)
        client.close()
    assert killed, "no worker was busy to kill"
    assert not result.failed and len(result.done) == len(paths)
    run_batch(paths, det, tmp_path / "local", opts)
    assert outputs(tmp_path / "dask") == outputs(tmp_path / "local")


def test_worker_without_the_model(cluster, model, images, tmp_path, monkeypatch):
    from golddigger.batch import BatchOptions
    from golddigger.distributed import ModelKey, run_batch_dask
    from golddigger.model.detector import Detector

    copy = tmp_path / "model-here-only"
    shutil.copytree(model, copy)
    det = Detector.from_folder(copy, threads=1)
    key = ModelKey.of(det)
    # the client has read the model; the workers (same machine here) cannot
    shutil.rmtree(copy)
    monkeypatch.setattr(ModelKey, "of", classmethod(lambda cls, d, threads=1: key))
    with distributed.Client(cluster.address, timeout=30) as client:
        with pytest.raises(ModelError) as info:
            run_batch_dask([images / "img0.tif"], det, tmp_path / "out", BatchOptions(),
                           client=client)
    msg = str(info.value)
    assert "cannot read the model folder" in msg and str(copy) in msg and "\n" not in msg
    assert "127.0.0.1" in msg and "other worker" in msg
    assert not (tmp_path / "out" / "img0.csv").exists()


def test_unreachable_scheduler(model, images, tmp_path, capsys):
    from golddigger.distributed import dask_client

    with pytest.raises(GoldDiggerError, match="cannot reach the Dask scheduler at "
                                              "tcp://127.0.0.1:9"):
        with dask_client("tcp://127.0.0.1:9", timeout=2):
            pass
    code = detect(images / "img0.tif", "--model", model, "-o", tmp_path / "o",
                  "--scheduler", "not-an-address")
    err = capsys.readouterr().err.strip()
    assert code != 0 and len(err.splitlines()) == 1 and "not-an-address" in err
    assert not (tmp_path / "o" / "img0.csv").exists()
