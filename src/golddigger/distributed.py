"""Batches on a Dask cluster (``dask.distributed``): one task per image, one per chunk
for huge images, the model loaded once per worker, the results written by the client.

The client plans the run exactly as a local run (`golddigger.batch.BatchRun`: lock,
settings manifest, ``--resume``, output checks), sends each image to the cluster
(`golddigger.batch.detect_one` on a worker: it reads the file, finds the region,
detects, writes nothing) and writes what comes back with `BatchRun.write`, so the files
and the summary are those of a local run. Workers must see the images and the model
folder at the same paths as the client (a shared file system); a worker that cannot read
the model is named before any image is sent. A task whose worker dies is run again
elsewhere (``retries``). Images large enough for chunks (`golddigger.model.chunked`)
are split into one task per chunk; the client then reads the plane's strided sample (for
the normalisation) and the workers read their own windows of the file.

Dask is imported only when these functions run::

    from dask.distributed import Client
    from golddigger.batch import BatchOptions
    from golddigger.distributed import run_batch_dask
    from golddigger.model.detector import Detector

    det = Detector.from_pretrained()
    with Client("tcp://scheduler:8786") as client:
        result = run_batch_dask(paths, det, "results/", BatchOptions(), client=client)
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from golddigger.errors import GoldDiggerError, ModelError

__all__ = ["ModelKey", "dask_client", "run_batch_dask", "worker_detector"]

logger = logging.getLogger(__name__)

_EXTRA = "pip install 'golddigger[dask]'"
#: files larger than this (bytes) are opened on the client to see whether they need chunks
_PROBE_BYTES = 64 * 2**20
_CHUNKABLE = (".mrc", ".mrcs", ".st", ".tif", ".tiff")


@dataclass(frozen=True)
class ModelKey:
    """A model as workers load it: its folder (a path every worker can read), the
    SHA-256 of its weights (the same model everywhere), and the detector settings."""

    folder: str
    sha256: str
    threads: int = 1
    precision: str = "float32"

    @classmethod
    def of(cls, detector, threads: int = 1) -> ModelKey:
        from golddigger.model.folder import sha256_file

        if detector.folder is None:
            raise ModelError("this detector has no model folder; a cluster loads the model "
                             "from a folder: use Detector.from_folder or from_pretrained")
        folder = Path(detector.folder).resolve()
        return cls(os.fspath(folder), sha256_file(folder / "weights.pt"), int(threads),
                   detector.precision)


_DETECTORS: dict[ModelKey, object] = {}
_LOCK = threading.Lock()


def worker_detector(key: ModelKey, where: str | None = None):
    """The detector of ``key`` in this process, loaded on first use (once per worker);
    ``where`` names this worker in messages."""
    with _LOCK:
        det = _DETECTORS.get(key)
        if det is None:
            det = _load(key, where or _worker_name())
            _DETECTORS[key] = det
        return det


def _load(key: ModelKey, where: str):
    from golddigger.model.detector import Detector
    from golddigger.model.folder import sha256_file

    folder = Path(key.folder)
    weights = folder / "weights.pt"
    if not os.access(weights, os.R_OK):
        raise ModelError(f"worker {where} cannot read the model folder {folder}; put the "
                         "model where every worker reads it at the same path (a shared "
                         "file system) and give that path with --model")
    if sha256_file(weights) != key.sha256:
        raise ModelError(f"worker {where} has a different model at {folder} (the weights' "
                         "checksum differs from the client's); copy the same model folder "
                         "to every worker")
    det = Detector.from_folder(folder, threads=key.threads, precision=key.precision)
    logger.info("worker %s loaded %s", where, folder)
    return det


def _worker_name() -> str:
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ImportError, ValueError):
        return "here"


def _check_model(key: ModelKey, dask_worker=None) -> str | None:
    """Load the model on a worker (``client.run`` passes ``dask_worker``); the problem as
    text, or None."""
    where = str(dask_worker.address) if dask_worker is not None else _worker_name()
    try:
        worker_detector(key, where)
    except GoldDiggerError as err:
        return str(err)
    except Exception as err:  # noqa: BLE001 - reported to the client as text
        return f"worker {where}: cannot load the model ({type(err).__name__}: {err})"
    return None


# ---------------------------------------------------------------------------- tasks
def _image_task(path: str, key: ModelKey, options, stem: str, exclude: Sequence[str]):
    from golddigger.batch import detect_one

    return detect_one(path, worker_detector(key), options, stem=stem, region_exclude=exclude)


def _chunk_task(job, chunk, key: ModelKey):
    return job.run(worker_detector(key), chunk)


# ---------------------------------------------------------------------------- client
@contextlib.contextmanager
def dask_client(scheduler: str | None = None, n_workers: int | None = None,
                timeout: float = 10.0) -> Iterator:
    """A ``dask.distributed.Client``: connected to ``scheduler`` (``tcp://host:port``),
    or to a local cluster of ``n_workers`` processes (one thread each) started here and
    stopped on exit."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise GoldDiggerError(f"--scheduler and --workers need dask.distributed: {_EXTRA}"
                              ) from None
    if (scheduler is None) == (n_workers is None):
        raise GoldDiggerError("give either a scheduler address or a number of workers")
    cluster = None
    if scheduler is not None:
        try:
            client = Client(scheduler, timeout=timeout)
        except (OSError, TimeoutError, ValueError) as err:
            raise GoldDiggerError(
                f"cannot reach the Dask scheduler at {scheduler} ({err}); check the address "
                "(tcp://HOST:PORT, as `dask scheduler` prints it), that the scheduler runs, "
                "and that its port is open from here") from None
    else:
        if n_workers < 1:
            raise GoldDiggerError(f"--workers must be at least 1, got {n_workers}")
        cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        client = Client(cluster)
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _needs_chunks(path: Path, options) -> bool:
    """Whether an image goes to the cluster in chunks (opened here when large)."""
    if path.suffix.lower() not in _CHUNKABLE:
        return False
    try:
        if path.stat().st_size < _PROBE_BYTES:
            return False
        from golddigger.io.images import read_image
        from golddigger.model.chunked import needs_chunks

        image = read_image(path, options.pixel_size_nm, options.channel)
        return needs_chunks(image)
    except (OSError, GoldDiggerError):
        return False  # the worker's task reports it


def run_batch_dask(paths: Sequence[str | Path], detector, outdir: str | Path, options, *,
                   client, progress: Callable | None = None, retries: int = 2,
                   worker_timeout: float = 60.0):
    """`golddigger.batch.run_batch` on a Dask cluster (see the module docstring).

    Parameters
    ----------
    paths, detector, outdir, options, progress
        As `golddigger.batch.run_batch`; ``detector`` must come from a model folder that
        every worker can read at the same path.
    client : dask.distributed.Client
    retries : int
        Times a task is run again after its worker died or it failed unexpectedly.
    worker_timeout : float
        Seconds to wait for a first worker.

    Returns
    -------
    golddigger.batch.BatchResult
    """
    from distributed import as_completed

    from golddigger.batch import BatchResult, BatchRun, ImageResult, detect_one, error_text
    from golddigger.model.chunked import chunk_mapper

    key = ModelKey.of(detector)
    try:
        client.wait_for_workers(1, timeout=worker_timeout)
    except TimeoutError:
        raise GoldDiggerError(f"no Dask worker joined the scheduler within "
                              f"{worker_timeout:g} s; start workers with `dask worker "
                              f"{client.scheduler.address}`") from None
    problems = {w: msg for w, msg in client.run(_check_model, key).items() if msg}
    if problems:
        worker, msg = next(iter(problems.items()))
        more = f" (and {len(problems) - 1} other worker(s))" if len(problems) > 1 else ""
        raise ModelError(f"{msg}{more}")

    def chunks_on_cluster(job, chunks):
        job = job.with_channel(options.channel)
        [remote] = client.scatter([job], broadcast=True)
        futures = [client.submit(_chunk_task, remote, c, key, retries=retries, pure=False)
                   for c in chunks]
        return client.gather(futures)

    results: list[ImageResult] = []
    with BatchRun(outdir, options, detector) as run:
        planned = run.plan(paths)
        n = len(planned)
        exclude = sorted(run.own_outputs)
        futures = {}
        huge = []
        for item in planned:
            if item.result is not None:
                if item.result.error:
                    logger.error("%s", item.result.error)
                results.append(item.result)
            elif _needs_chunks(item.path, options):
                huge.append(item)
            else:
                fut = client.submit(_image_task, os.fspath(item.path), key, options,
                                    item.stem, exclude, retries=retries, pure=False)
                futures[fut] = item
        done = len(results)
        if progress is not None:
            progress(done, n, None)
        for item in huge:  # chunks of one image at a time, each chunk a task
            with chunk_mapper(chunks_on_cluster):
                res = detect_one(item.path, detector, options, stem=item.stem,
                                 region_exclude=run.own_outputs)
            results.append(_written(run, res))
            done += 1
            if progress is not None:
                progress(done, n, item.path)
        for fut in as_completed(list(futures)):
            item = futures[fut]
            try:
                res = fut.result()
            except GoldDiggerError as err:
                res = ImageResult(item.path, stem=item.stem, error=error_text(item.path, err))
            except Exception as err:  # noqa: BLE001 - one image's failure, reported
                res = ImageResult(item.path, stem=item.stem, error=(
                    f"{error_text(item.path, err)} (on the Dask cluster, after {retries} "
                    "retries)"))
            results.append(_written(run, res))
            done += 1
            if progress is not None:
                progress(done, n, item.path)
        if progress is not None:
            progress(done, n, None)
    order = {os.fspath(item.path): i for i, item in enumerate(planned)}
    results.sort(key=lambda r: order.get(os.fspath(r.path), len(order)))
    return BatchResult(results, run.summary_path, False)


def _written(run, res):
    if res.error:
        logger.error("%s", res.error)
        return res
    return run.write(res)
