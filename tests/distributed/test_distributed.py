"""needle.distributed on real MPI processes (`mpirun -n 2`, MPICH from the mpi extra) and DataLoader sharding.

The jobs are tests/distributed/mpi_job.py (collectives, faults) and the training app (exactness); each rank's results
come back in files that these tests compare with numpy."""
import os
import sys
import time

import numpy as np
import pytest

from needle.data import DataLoader, NDArrayDataset

pytest.importorskip("mpi4py", reason="the mpi extra (pip install -e '.[mpi]') is not installed")
from needle import distributed as dist  # noqa: E402

JOB = os.path.join(os.path.dirname(__file__), "mpi_job.py")


def _job(mode: str, prefix: str, **kw):
    return dist.run(2, [JOB, mode, prefix], **kw)


def test_collectives_and_ddp_on_two_ranks(tmp_path):
    _job("collectives", str(tmp_path / "c"), timeout=120)
    r0, r1 = (np.load(tmp_path / f"c.{r}.npz") for r in (0, 1))
    np.testing.assert_array_equal(r0["summed"], np.arange(5) * 3.0)  # rank 0's x1 + rank 1's x2
    for r in (r0, r1):
        np.testing.assert_array_equal(r["cast"], np.full(3, 8.0))  # root 1's value everywhere
        np.testing.assert_array_equal(r["metrics"], [3.0, 10.0])
    n_params = 4
    for i in range(n_params):
        # both ranks start from rank 0's parameters although they were seeded differently
        np.testing.assert_array_equal(r0[f"start{i}"], r1[f"start{i}"])
        # each rank's gradient becomes the average of the two ranks' own gradients
        mean = (r0[f"local{i}"] + r1[f"local{i}"]) / 2
        np.testing.assert_allclose(r0[f"synced{i}"], mean, rtol=1e-6, atol=1e-7)
        np.testing.assert_array_equal(r0[f"synced{i}"], r1[f"synced{i}"])
    assert not np.allclose(r0["local0"], r1["local0"])  # the ranks really saw different data
    # 64-byte buckets over W1 (120 B), b1 (20 B), W2 (60 B), b2 (12 B): b1 + W2 and W2 + b2 overflow one
    assert int(r0["collectives"]) == 4


def test_buckets_pack_in_order_within_the_limit():
    arrays = [np.zeros(n, dtype) for n, dtype in [(3, np.float32), (4, np.float32), (40, np.float32),
                                                   (2, np.float64), (1, np.float64), (5, np.float32)]]
    groups = list(dist.ddp.buckets(arrays, 32))
    assert [i for g in groups for i in g] == list(range(len(arrays)))
    for g in groups:
        assert len({arrays[i].dtype for i in g}) == 1
        assert len(g) == 1 or sum(arrays[i].nbytes for i in g) <= 32
    assert groups == [[0, 1], [2], [3, 4], [5]]
    assert list(dist.ddp.buckets(arrays, 10**6)) == [[0, 1, 2], [3, 4], [5]]


def _train(tmp_path, name: str, n: int, batch: int) -> tuple:
    out = tmp_path / name
    args = ["-m", "needle.apps.training", "mnist", "--epochs", "2", "--max-samples", "600", "--norm", "layer",
            "--optimizer", "sgd", "--drop", "0", "--batch-size", str(batch), "--save", f"{out}.npz", "--history", f"{out}.json"]
    if n > 1:
        dist.run(n, args + ["--distributed"], timeout=300)
    else:
        import subprocess

        subprocess.run([sys.executable, *args], check=True, capture_output=True, timeout=300)
    params = np.load(f"{out}.npz")
    return [params[k] for k in sorted(params.files, key=lambda k: int(k.split("_")[1]))], (out.with_suffix(".json")).read_text()


def test_two_ranks_of_batch_b_train_as_one_process_of_batch_2b(tmp_path):
    single, single_log = _train(tmp_path, "single", 1, 60)
    double, double_log = _train(tmp_path, "double", 2, 30)
    assert len(single) == len(double) == 28
    for a, b in zip(single, double):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5)
    import json

    for e1, e2 in zip(json.loads(single_log), json.loads(double_log)):
        assert e1.keys() == e2.keys()
        np.testing.assert_allclose([e2[k] for k in e2], [e1[k] for k in e1], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("mode, says", [
    ("raises", "rank 1 of 2 failed with ValueError: planted failure on rank 1; aborting all ranks"),
    ("hangs", "rank 0 of 2: allreduce did not complete within 2 s"),  # rank 0's deadline, while rank 1 sleeps
])
def test_a_rank_that_raises_or_hangs_makes_the_job_stop_with_a_clear_error(tmp_path, mode, says):
    start = time.monotonic()
    done = _job(mode, str(tmp_path / mode), timeout=120, check=False)
    assert done.returncode != 0
    assert says in done.stderr
    assert time.monotonic() - start < 120


def test_a_rank_that_dies_ends_the_job_and_run_says_so(tmp_path):
    with pytest.raises(dist.DistributedError, match="exited with 3"):
        _job("dies", str(tmp_path / "d"), timeout=60)


def test_run_reports_a_job_past_its_time_limit(tmp_path):
    with pytest.raises(dist.DistributedError, match="did not finish within 3 s"):
        dist.run(2, ["-c", "import time; time.sleep(30)"], timeout=3)


def test_without_mpi4py_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "mpi4py", None)
    with pytest.raises(ImportError, match=r"needle\[mpi\]"):
        dist.comm._mpi()


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="timeout must be positive"):
        dist.init(timeout=0)
    with pytest.raises(TypeError, match="contiguous numpy array"):
        dist.allreduce_([1.0, 2.0])
    with pytest.raises(ValueError, match="root 3 is not a rank of 1"):
        dist.broadcast_(np.zeros(2), root=3)


@pytest.mark.parametrize("n", [2, 3])
def test_sharded_loaders_split_each_epoch_into_disjoint_parts_of_the_big_batches(n):
    X = np.arange(47, dtype=np.float32).reshape(47, 1)
    y = np.arange(47, dtype=np.float32)
    data = NDArrayDataset(X, y)
    shards = []
    for r in range(n):
        np.random.seed(5)
        shards.append([b[1].numpy() for b in DataLoader(data, 4, shuffle=True, num_replicas=n, rank=r)])
    np.random.seed(5)
    whole = [b[1].numpy() for b in DataLoader(data, 4 * n, shuffle=True)]
    assert len({len(s) for s in shards}) == 1  # every rank takes as many steps
    assert all(len(s) == len(DataLoader(data, 4, num_replicas=n, rank=0)) for s in shards)
    seen = np.concatenate([np.concatenate(s) for s in shards])
    assert len(seen) == len(set(seen.tolist())) == 47 - 47 % n  # disjoint, all but the last 47 % n
    for i, big in enumerate(whole[: len(shards[0])]):
        if len(big) == 4 * n:  # step i of all ranks together is step i of one loader with batch 4n
            assert sorted(np.concatenate([s[i] for s in shards]).tolist()) == sorted(big.tolist())


def test_dataloader_rejects_a_rank_outside_the_replicas():
    data = NDArrayDataset(np.zeros((4, 1), np.float32), np.zeros(4, np.float32))
    with pytest.raises(ValueError, match=r"rank must be in \[0, num_replicas\), got rank 2 of 2"):
        DataLoader(data, 2, num_replicas=2, rank=2)


@pytest.mark.parametrize("n", [2, 3])
def test_ring_allreduce_equals_mpi_allreduce(n):
    from needle.course.mpi_trial import SIZES, run_allreduce_trial

    records = run_allreduce_trial(dist.ring_allreduce, n, seed=n)
    assert len(records) == n * len(SIZES) * 2
    for rec in records:
        assert "error" not in rec, rec
        assert rec["shape"] == [rec["size"]] and not rec["input_changed"]
        assert rec["max_error"] <= (1e-12 if rec["dtype"] == "float64" else 1e-5), rec


def test_the_trial_catches_a_wrong_allreduce_and_a_collective(tmp_path):
    from needle.course.mpi_trial import run_allreduce_trial

    def only_mine(comm, x):
        return x * 1.0

    def collective(comm, x):
        return comm.allreduce(x)

    assert all(rec["max_error"] > 0 for rec in run_allreduce_trial(only_mine, 2, seed=0))
    errors = [rec["error"] for rec in run_allreduce_trial(collective, 2, seed=0)]
    assert errors and all("comm.allreduce is not available here" in e for e in errors)
