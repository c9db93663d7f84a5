"""Runs that scale out (experiments/parallel/README.md).

- a small grid (2 solvers x 2 repetitions) run through a real
  ``dask.distributed`` cluster (a scheduler and 2 worker processes started
  here, its address given to ``benchopt run --parallel-config``) gives the
  same result table, run by run and value by value, as the same grid run
  sequentially;
- every ``experiments/parallel/*.yml`` passes benchopt's own config check
  (``check_parallel_config``) and only names options the backend accepts:
  the dask ones start a cluster, the submitit ones are accepted by
  submitit (when it is installed: it is only needed on a cluster).
"""
import inspect
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import yaml
from benchopt import parallel_backends
from benchopt.parallel_backends import (
    DISTRIBUTED_BACKENDS,
    check_parallel_config,
)

from conftest import ROOT

PARALLEL = ROOT / "experiments" / "parallel"
CONFIGS = sorted(PARALLEL.glob("*.yml"))
SUBMITIT_CONFIGS = [p for p in CONFIGS
                    if yaml.safe_load(p.read_text()).get("backend")
                    == "submitit"]

NO_DASK = ("dask.distributed is not installed: pip install "
           "'dask[distributed]' (it is in requirements-test.txt)")

# A budget in iterations, not time: the callback loop logs the same
# stop_val (and objective_n_iter = eval_freq * stop_val) whatever the speed
# of the machine; the timeout is far above the ~0.1 s a run takes.
# SOBA: a fixed random_state, the same stream in both repetitions. SABA:
# random_state=None, seeded from --seed and the repetition, so its two
# repetitions differ and a run filed under the wrong idx_rep is caught.
GRID = ["-d", "simulated",
        "-s", "SOBA[step_size=0.3,random_state=0]",
        "-s", "SABA",
        "-r", "2", "-n", "6", "--timeout", "300", "--seed", "0",
        "--no-cache", "--no-plot"]
N_RUNS = 2 * 2  # solver settings x repetitions
N_WORKERS = 2
# At most 2 runs per worker thread: joblib then submits every run at once
# (pre_dispatch = 2 * n_jobs), before any result comes back. With more,
# the next run is pickled by dask's client thread while benchopt's main
# thread records a finished one in the progress object that every run
# carries (TerminalOutput.status/rep). Seen once in about a dozen dask runs
# of 6 runs on 2 workers: "RuntimeError: dictionary changed size during
# iteration", then `benchopt run` hangs (benchopt 1.10; see
# experiments/parallel/README.md).
assert N_RUNS <= 2 * N_WORKERS
KEYS = ["solver_name", "idx_rep", "stop_val"]


def _run_grid(tmp_path, output, *options, timeout=300):
    cmd = [sys.executable, "-m", "benchopt", "run", str(ROOT), *GRID,
           "--output", str(output), *options]
    # One BLAS thread, as in a dask worker (its nanny sets it): the metrics
    # that solve a linear system (suboptimality, inner_error) then agree to
    # the last bit; with a different thread count they differ by ~1e-15.
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    try:
        proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True,
                              text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired as error:
        out = (error.stdout or b"")[-3000:] + (error.stderr or b"")[-3000:]
        pytest.fail(f"benchopt run still running after {timeout} s (a "
                    f"hang of the dask backend?): {out!r}")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert output.exists(), proc.stdout[-2000:]
    return pd.read_parquet(output).sort_values(KEYS, ignore_index=True)


def _assert_same_runs(expected, actual):
    pd.testing.assert_frame_equal(expected[KEYS], actual[KEYS])
    metrics = [c for c in expected.columns if c.startswith("objective_")]
    assert metrics == [c for c in actual.columns
                       if c.startswith("objective_")]
    assert "objective_value" in metrics and "objective_n_iter" in metrics
    for column in metrics:
        if not pd.api.types.is_float_dtype(expected[column]):
            # counters (n_iter, oracle_calls) and objective_name: exact
            assert expected[column].tolist() == actual[column].tolist(), \
                column
        else:
            np.testing.assert_allclose(actual[column], expected[column],
                                       rtol=1e-12, atol=1e-14,
                                       err_msg=column)


def test_dask_cluster_run_matches_sequential_run(tmp_path):
    distributed = pytest.importorskip("dask.distributed", reason=NO_DASK)
    with distributed.LocalCluster(
            n_workers=N_WORKERS, threads_per_worker=1, processes=True,
            dashboard_address=None, env={"OMP_NUM_THREADS": "1"},
    ) as cluster, distributed.Client(cluster) as client:
        config = tmp_path / "dask.yml"
        config.write_text(yaml.safe_dump({
            "backend": "dask", "dask_address": cluster.scheduler_address}))
        with distributed.get_task_stream(client) as stream:
            on_dask = _run_grid(tmp_path, tmp_path / "dask" / "grid.parquet",
                                "--parallel-config", str(config),
                                timeout=180)
        workers = set(client.scheduler_info()["workers"])
    sequential = _run_grid(tmp_path, tmp_path / "seq" / "grid.parquet")

    # the runs were executed by the cluster's workers
    ran = [task for task in stream.data
           if "run_one_to_cvg" in str(task["key"])]
    assert ran, [task["key"] for task in stream.data]
    assert {task["worker"] for task in ran} <= workers

    # the whole grid, every run stopped by the iteration budget
    runs = sequential.groupby(["solver_name", "idx_rep"]).stop_val
    assert runs.ngroups == N_RUNS
    assert runs.max().nunique() == 1, runs.max()
    saba = sequential[sequential.solver_name.str.startswith("SABA[")]
    first, second = (rep.objective_value.to_numpy()[1:]
                     for _, rep in saba.groupby("idx_rep"))
    assert not np.array_equal(first, second)

    assert len(on_dask) == len(sequential)
    _assert_same_runs(sequential, on_dask)


# The configs of experiments/parallel/

#: sbatch options submitit 1.5 accepts (``SlurmExecutor._valid_parameters``)
#: and its generic names, for the check where submitit is not installed.
SLURM_OPTIONS = {
    "account", "additional_parameters", "array_parallelism", "comment",
    "constraint", "cpus_per_gpu", "cpus_per_task", "dependency", "exclude",
    "exclusive", "gpus_per_node", "gpus_per_task", "gres", "job_name",
    "mail_type", "mail_user", "mem", "mem_per_cpu", "mem_per_gpu",
    "nodelist", "nodes", "ntasks_per_node", "num_gpus", "partition", "qos",
    "setup", "signal_delay_s", "srun_args", "stderr_to_stdout", "teardown",
    "time", "use_srun", "wckey",
    "name", "timeout_min", "tasks_per_node",
}


def _check(path, monkeypatch):
    """benchopt's check, without leaving its global "distributed" flag."""
    monkeypatch.setattr(parallel_backends, "_DISTRIBUTED_FRONTAL",
                        parallel_backends._DISTRIBUTED_FRONTAL)
    return check_parallel_config(str(path), None)


def _check_dask_options(config):
    import joblib
    from distributed import Client, LocalCluster, Nanny

    assert config.get("dask_cluster", "local") == "local", (
        "only local clusters or a scheduler address here (coiled: not a "
        "dependency)")
    # benchopt pops these, the rest goes to joblib.parallel_config
    other = set(config) - {"backend", "n_jobs", "batch_size"}
    other -= set(inspect.signature(joblib.parallel_config).parameters)
    unknown = {k for k in other if not k.startswith("dask_")}
    assert not unknown, f"not dask_* options: {sorted(unknown)}"
    names = {k.removeprefix("dask_") for k in other} - {"cluster"}
    accepted = set(inspect.signature(Client).parameters)
    if "address" not in names:  # the Client starts a LocalCluster
        for cls in (LocalCluster, Nanny):  # Nanny: the worker options
            accepted |= set(inspect.signature(cls).parameters)
    unknown = names - accepted
    assert not unknown, f"options distributed does not take: {unknown}"


def _check_slurm_options(config):
    options = {k.removeprefix("slurm_") for k in config} - {"backend"}
    assert "n_jobs" not in options, "-j/n_jobs is not a submitit option"
    assert "mem_gb" not in options, (
        "slurm_mem_gb reaches sbatch as --mem=<number> (megabytes): write "
        "slurm_mem: 8GB")
    unknown = options - SLURM_OPTIONS
    assert not unknown, f"not sbatch options of submitit: {sorted(unknown)}"
    if "time" in options:
        assert isinstance(config["slurm_time"], str)


def test_parallel_configs_exist():
    assert {p.name for p in CONFIGS} >= {"dask_local.yml",
                                         "slurm_submitit.yml"}
    assert SUBMITIT_CONFIGS
    assert (PARALLEL / "README.md").is_file()


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_parallel_config_passes_benchopt_check(path, monkeypatch):
    raw = yaml.safe_load(path.read_text())
    assert isinstance(raw, dict), f"{path}: not a mapping"
    config = _check(path, monkeypatch)
    assert config["backend"] in DISTRIBUTED_BACKENDS, (
        f"backend {config['backend']!r}; benchopt's: {DISTRIBUTED_BACKENDS}")
    if config["backend"] == "dask":
        pytest.importorskip("dask.distributed", reason=NO_DASK)
        _check_dask_options(config)
    elif config["backend"] == "submitit":
        _check_slurm_options(config)
    # the header says how to use it
    assert path.read_text().startswith("# Parallel config for `benchopt run")


def test_dask_local_config_starts_a_cluster(monkeypatch):
    pytest.importorskip("dask.distributed", reason=NO_DASK)
    from benchopt.parallel_backends.dask_backend import check_dask_config

    # `-j 1`: benchopt turns it into the LocalCluster's n_workers
    config = _check(PARALLEL / "dask_local.yml", monkeypatch)
    config["n_jobs"] = 1
    config.pop("backend")
    config["dask_dashboard_address"] = None  # no port taken by a test
    client = check_dask_config(config)["client"]
    try:
        workers = client.scheduler_info()["workers"].values()
        assert [w["nthreads"] for w in workers] == [1]
    finally:
        client.close()
        if client.cluster is not None:
            client.cluster.close()


@pytest.mark.parametrize("path", SUBMITIT_CONFIGS,
                         ids=[p.name for p in SUBMITIT_CONFIGS])
def test_slurm_config_is_accepted_by_submitit(path, monkeypatch, tmp_path):
    submitit = pytest.importorskip(
        "submitit", reason="submitit is not installed (only needed on a "
        "SLURM cluster: pip install submitit)")
    from benchopt.parallel_backends.slurm_executor import (
        get_slurm_executor,
        merge_slurm_configs,
    )
    from submitit.slurm.slurm import SlurmExecutor

    assert SLURM_OPTIONS - {"name", "timeout_min", "tasks_per_node"} \
        <= SlurmExecutor._valid_parameters()
    config = _check(path, monkeypatch)
    config.pop("backend")
    # what benchopt's run_on_slurm does, on a machine without srun
    monkeypatch.setattr(SlurmExecutor, "affinity", classmethod(lambda c: 2))
    bench = SimpleNamespace(get_slurm_folder=lambda: Path(tmp_path))
    executor = get_slurm_executor(bench, merge_slurm_configs(config))
    assert isinstance(executor, submitit.AutoExecutor)
    assert executor.cluster == "slurm"
    script = executor._executor._make_submission_file_text("true", "0")
    for key, value in config.items():
        option = key.removeprefix("slurm_")
        if option in ("array_parallelism", "setup"):
            continue  # an --array bound at submission, script lines
        assert f"#SBATCH --{option.replace('_', '-')}={value}" in script, (
            key, script)
