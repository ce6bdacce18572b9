"""The example job files (examples/) are real: their commands run against our real command lines.

The GitHub Actions workflow is read with PyYAML and its steps are carried out in order -- the
shard matrix, the artifact hand-over (emulated from the upload and download steps' own names
and paths), the merge, the CI gates and the reports -- with the built-in reference model in
place of a hosted one. The Slurm scripts' `#SBATCH` lines are checked against sbatch's options,
and the scripts themselves run under bash, one array task after another, with `srun` a pass-through.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from helpers.model_servers import served_models

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / "examples" / "github-actions" / "medbench-sharded.yml"
SLURM_SHARDS = ROOT / "examples" / "slurm" / "medbench-shards.sbatch"
SLURM_MERGE = ROOT / "examples" / "slurm" / "medbench-merge.sbatch"
# sbatch long options the example scripts may use (sbatch(1)).
SBATCH_OPTIONS = {
    "job-name",
    "array",
    "cpus-per-task",
    "mem",
    "time",
    "output",
    "error",
    "partition",
    "nodes",
    "ntasks",
    "gres",
    "gpus",
    "account",
    "qos",
    "dependency",
    "mail-type",
    "mail-user",
}
EXPRESSION = re.compile(r"\$\{\{\s*([a-z]+)\.([A-Za-z_]+)\s*\}\}")


def project(path: Path) -> Path:
    """A folder laid out like this repository, as far as the job files need it."""
    (path / "tests_bench").mkdir(parents=True)
    shutil.copy(ROOT / "tests_bench" / "test_medagentbench.py", path / "tests_bench")
    (path / "conftest.py").write_text('pytest_plugins = ["medbench.plugin"]\n')
    return path


def environment(**extra: str) -> dict[str, str]:
    """The venv's python first on PATH (the job files say `python`), the small EHR for speed."""
    return {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "MEDBENCH_EHR_SCALE": "small",
        **extra,
    }


def bash(command: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


# --- GitHub Actions ---------------------------------------------------------------------------------


def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def substitute(text: str, values: dict[str, dict[str, str]]) -> str:
    def value(match: re.Match[str]) -> str:
        scope, name = match.groups()
        assert scope in values and (scope == "secrets" or name in values[scope]), f"unknown expression {match.group(0)}"
        return values[scope].get(name, "")

    return EXPRESSION.sub(value, text)


def test_the_workflow_runs_a_shard_matrix_then_one_merge_and_report_job() -> None:
    data = workflow()
    assert set(data.get("on", data.get(True))) >= {"workflow_dispatch"}  # PyYAML reads `on:` as True
    shards = int(data["env"]["SHARDS"])
    shard_job, merge_job = data["jobs"]["shard"], data["jobs"]["merge-and-report"]
    assert shard_job["strategy"]["matrix"]["shard"] == list(range(1, shards + 1))
    assert shard_job["strategy"]["fail-fast"] is False
    assert merge_job["needs"] == "shard" and "cancelled()" in merge_job["if"]
    runs = " ".join(step.get("run", "") for step in shard_job["steps"])
    assert "--shard=${{ matrix.shard }}/${{ env.SHARDS }}" in runs
    assert "--results-dir=shards/${{ matrix.shard }}" in runs
    merge_steps = " ".join(step.get("run", "") for step in merge_job["steps"])
    assert "python -m medbench.results merge" in merge_steps and "python -m medbench.results gates" in merge_steps


def test_the_workflow_steps_run_for_real_and_gate_the_merged_run(tmp_path: Path) -> None:
    data = workflow()
    root = project(tmp_path / "repo")
    env = {
        **{k: str(v) for k, v in data["env"].items()},
        "MODEL": "reference",
    }  # the built-in model stands in for the hosted one
    artifacts: dict[str, Path] = {}
    for shard in data["jobs"]["shard"]["strategy"]["matrix"]["shard"]:
        values = {"env": env, "matrix": {"shard": str(shard)}, "secrets": {}}
        for step in data["jobs"]["shard"]["steps"]:
            carry_out(step, values, root, artifacts)
    assert sorted(artifacts) == [f"medbench-shard-{i}" for i in (1, 2, 3)]
    values = {"env": env, "matrix": {}, "secrets": {}}
    outputs = [carry_out(step, values, root, artifacts) for step in data["jobs"]["merge-and-report"]["steps"]]
    text = "\n".join(outputs)
    assert "merged 3 folder(s) (shards 1/3, 2/3, 3/3)" in text and "gates passed" in text
    assert (root / "report" / "report.html").exists() and (root / "report" / "transcripts.html").exists()


def carry_out(step: dict, values: dict[str, dict[str, str]], root: Path, artifacts: dict[str, Path]) -> str:
    """One workflow step: our commands run, artifact steps move folders, set-up steps are skipped."""
    uses = step.get("uses", "")
    if uses.startswith("actions/upload-artifact"):
        name = substitute(step["with"]["name"], values)
        artifacts[name] = root / substitute(step["with"]["path"], values).split()[0]
        return ""
    if uses.startswith("actions/download-artifact"):
        pattern = re.compile(step["with"]["pattern"].replace("*", ".*") + "$")
        for name, source in artifacts.items():
            if pattern.match(name):
                # upload-artifact leaves hidden files out (include-hidden-files: false)
                shutil.copytree(source, root / step["with"]["path"] / name, ignore=shutil.ignore_patterns(".*"))
        return ""
    command = substitute(step.get("run", ""), values).strip()
    if not command.startswith("python -m"):  # checkout, setup-python, pip install: the test's own venv
        return ""
    result = bash(command, root, environment(**values["env"]))
    assert result.returncode == 0, f"{step.get('name')}: {command}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


# --- Slurm --------------------------------------------------------------------------------------------


def sbatch_lines(path: Path) -> dict[str, str]:
    options = {}
    for line in path.read_text().splitlines():
        if line.startswith("#SBATCH"):
            name, _, value = shlex.split(line[len("#SBATCH") :])[0].removeprefix("--").partition("=")
            options[name] = value
    return options


@pytest.mark.parametrize("script", [SLURM_SHARDS, SLURM_MERGE], ids=["shards", "merge"])
def test_the_slurm_scripts_use_sbatch_options_and_our_commands(script: Path) -> None:
    options = sbatch_lines(script)
    assert set(options) <= SBATCH_OPTIONS, set(options) - SBATCH_OPTIONS
    assert {"job-name", "time", "output"} <= set(options)
    text = script.read_text()
    assert text.startswith("#!/bin/bash\n") and "set -euo pipefail" in text
    assert bash(f"bash -n {shlex.quote(str(script))}", ROOT, dict(os.environ)).returncode == 0


def test_the_slurm_array_runs_every_shard_and_the_merge_job_gates_the_run(tmp_path: Path) -> None:
    first, last = (int(n) for n in sbatch_lines(SLURM_SHARDS)["array"].split("-"))
    assert "--shard=auto" in SLURM_SHARDS.read_text()
    root = project(tmp_path / "repo")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "srun").write_text('#!/bin/bash\nexec "$@"\n')
    (bin_dir / "srun").chmod(0o755)
    count = last - first + 1
    with served_models([], []) as replicas:  # the script's model replicas: two built-in model servers
        env = environment(MODEL="reference-served", BASE_URLS=" ".join(served.base_url for served in replicas))
        env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
        for task_id in range(first, last + 1):
            array = {
                "SLURM_ARRAY_TASK_ID": str(task_id),
                "SLURM_ARRAY_TASK_MIN": str(first),
                "SLURM_ARRAY_TASK_COUNT": str(count),
                "SLURM_ARRAY_JOB_ID": "4242",
            }
            result = bash(f"bash {shlex.quote(str(SLURM_SHARDS))}", root, {**env, **array})
            assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
            assert f"{300 // count} passed" in result.stdout
    merged = bash(f"bash {shlex.quote(str(SLURM_MERGE))}", root, env)
    assert merged.returncode == 0, merged.stdout[-3000:] + merged.stderr[-3000:]
    assert f"merged {count} folder(s)" in merged.stdout and "gates passed" in merged.stdout
    assert (root / "results" / "report" / "report.html").exists()


# --- scripts/benchmark_models.py -----------------------------------------------------------------------


def test_benchmark_models_passes_every_replica_and_the_shard_to_pytest() -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import benchmark_models
    finally:
        sys.path.pop(0)
    argv = ["--model", "m", "--base-url", "http://a:8000/v1", "--base-url", "http://b:8000/v1", "--shard", "2/3"]
    parser_args = benchmark_models.parse_arguments(argv)
    command = benchmark_models.pytest_command(parser_args, "m", [])
    assert "--base-url=http://a:8000/v1" in command and "--base-url=http://b:8000/v1" in command
    assert "--shard=2/3" in command


# --- Kubernetes ------------------------------------------------------------------------------------------


def test_the_kubernetes_indexed_job_states_the_same_n_as_its_completions(tmp_path: Path) -> None:
    job = yaml.safe_load((ROOT / "examples" / "kubernetes" / "medbench-shards-job.yaml").read_text())
    spec = job["spec"]
    assert job["kind"] == "Job" and spec["completionMode"] == "Indexed"
    container = spec["template"]["spec"]["containers"][0]
    command = " ".join(container["args"])
    count = spec["completions"]
    assert f"--shard=$((JOB_COMPLETION_INDEX + 1))/{count}" in command
    # What the pod's shell makes of it, for every index, is a shard our option reader accepts.
    from medbench.sharding import Shard, parse_shard

    shard = re.search(r"--shard=(\$\(\([^)]*\)\)/\d+)", command)
    assert shard is not None
    for index in range(count):
        expanded = bash(f"JOB_COMPLETION_INDEX={index}; echo {shard.group(1)}", tmp_path, dict(os.environ))
        assert parse_shard(expanded.stdout.strip(), {}) == Shard(index + 1, count)
