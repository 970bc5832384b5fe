"""A package Dataflow can stage: the source distribution holds every module the workers
import, installs into a clean venv, and the installed copy (not the checkout) runs a job.

The clean venv borrows this environment's third-party packages through a ``.pth`` line
(no heavy reinstall, no network) while mediagen itself is installed from the sdist with
``pip install --no-deps``. Nested ``.pth`` files of the borrowed folder (such as an
editable install of this checkout) are not processed, and the test checks where every
mediagen package is imported from.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import site
import subprocess
import sys
import sysconfig
import tarfile
from pathlib import Path

import pyarrow.dataset as ds
import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("schemas", "providers", "transforms", "pipelines")
NOT_SHIPPED = ("tests/", "examples/", "benchmarks/", "deploy/", ".ci/")
COPY_IGNORE = shutil.ignore_patterns(
    ".git", ".venv*", "venv", "output", "__pycache__", "*.egg-info", "build", "dist", ".pytest_cache", "*.pyc",
)


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["PYTHONNOUSERSITE"] = "1"
    return env


def _run(command: list[str], cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(c) for c in command], cwd=cwd, env=_clean_env(), capture_output=True, text=True,
                          timeout=timeout, check=False)
    assert done.returncode == 0, f"{command} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def sdist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sdist, built from a copy of the checkout (the build writes egg-info beside setup.py)."""
    work = tmp_path_factory.mktemp("sdist")
    source = work / "source"
    shutil.copytree(REPO, source, ignore=COPY_IGNORE)
    outdir = work / "dist"
    if importlib.util.find_spec("build") is not None:
        _run([sys.executable, "-m", "build", "--sdist", "--no-isolation", "--outdir", outdir], cwd=source)
    else:  # the test extra brings `build`; plain setuptools makes the same tarball
        _run([sys.executable, "setup.py", "-q", "sdist", "--dist-dir", outdir], cwd=source)
    [tarball] = outdir.glob("mediagen-*.tar.gz")
    return tarball


@pytest.fixture(scope="module")
def installed(sdist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with mediagen installed from the sdist; returns its python."""
    venv = tmp_path_factory.mktemp("clean") / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=venv.parent)
    python = venv / "bin" / "python"
    purelib = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                        cwd=venv.parent).stdout.strip())
    borrowed = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"], *site.getsitepackages()])
    (purelib / "_borrowed_dependencies.pth").write_text("".join(f"{p}\n" for p in borrowed if Path(p).is_dir()))
    _run([python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index", sdist],
         cwd=venv.parent)
    return python


def test_sdist_holds_every_module_and_nothing_workers_do_not_need(sdist: Path) -> None:
    with tarfile.open(sdist) as tar:
        names = tar.getnames()
    root = names[0].split("/", 1)[0]
    shipped = {name.split("/", 1)[1] for name in names if "/" in name}
    modules = sorted(
        str(path.relative_to(REPO)) for package in PACKAGES for path in (REPO / package).rglob("*.py")
        if "__pycache__" not in path.parts
    )
    assert modules and [m for m in modules if m not in shipped] == []
    assert {"setup.py", "README.md", "PKG-INFO"} <= shipped, "setup.py reads README.md; pip needs PKG-INFO"
    assert [n for n in shipped if n.startswith(NOT_SHIPPED)] == [], "tests, samples and docs stay out"
    assert root.startswith("mediagen-")


def test_installed_copy_imports_from_the_clean_venv(installed: Path, tmp_path: Path) -> None:
    probe = (
        "import json, sys, importlib\n"
        f"names = {list(PACKAGES) + ['transforms.generate', 'transforms.storage', 'pipelines.generate']!r}\n"
        "found = {}\n"
        "for name in names:\n"
        "    module = importlib.import_module(name)\n"
        "    found[name] = [module.__file__] if module.__file__ else list(module.__path__)\n"
        "print(json.dumps({'modules': found, 'path': sys.path, 'prefix': sys.prefix}))\n"
    )
    report = json.loads(_run([installed, "-c", probe], cwd=tmp_path).stdout)
    prefix = Path(report["prefix"]).resolve()
    assert prefix == installed.parent.parent.resolve()
    for name, locations in report["modules"].items():
        for location in locations:
            assert Path(location).resolve().is_relative_to(prefix), f"{name} imported from {location}"
    shadowing = [
        p for p in report["path"]
        if not Path(p or tmp_path).resolve().is_relative_to(prefix)
        and any((Path(p or tmp_path) / package).exists() for package in PACKAGES)
    ]
    assert shadowing == [], "a folder outside the clean venv (the checkout?) offers mediagen's packages"
    assert str(REPO) not in report["path"]


def test_installed_console_script_runs_a_tiny_job_outside_the_checkout(installed: Path, tmp_path: Path) -> None:
    (tmp_path / "prompts.jsonl").write_text(
        json.dumps({"id": "cat", "prompt": "a cat", "size": "64x64"}) + "\n"
        + json.dumps({"id": "dog", "prompt": "a dog", "size": "96x64"}) + "\n"
    )
    (tmp_path / "job.json").write_text(json.dumps(
        {"modality": "image", "configs": [{"name": "m", "provider": "mock", "model": "mock-image"}]}
    ))
    script = installed.parent / "mediagen-generate"
    done = _run([script, "--input", "prompts.jsonl", "--output", "out", "--config", "job.json", "--no-progress"],
                cwd=tmp_path)
    assert "2 rows" in done.stdout
    rows = {r["row_id"]: r for r in ds.dataset(tmp_path / "out" / "results", format="parquet").to_table().to_pylist()}
    assert {r["status"] for r in rows.values()} == {"completed"}
    assert (rows["dog"]["width"], rows["dog"]["height"]) == (96, 64)
    assert all((tmp_path / "out" / r["media_uris"][0]).is_file() for r in rows.values())  # relative to the root
    help_text = _run([installed, "-m", "pipelines.generate", "--help"], cwd=tmp_path).stdout
    assert "--storage_options" in help_text


# -- deploy/: the container, the Flex Template and the nightly recipes, checked offline ---------

DEPLOY = REPO / "deploy"


def unknown_options(argv: list[str]) -> list[str]:
    """Options in ``argv`` that neither the mediagen command line nor Beam knows."""
    from apache_beam.options.pipeline_options import PipelineOptions

    from pipelines.generate import build_parser

    _, beam_args = build_parser().parse_known_args(["--input=in", "--output=out", *argv])
    options = PipelineOptions(beam_args)
    return sorted(set(options.get_all_options(retain_unknown_options=True)) - set(options.get_all_options()))


def cli_option_names() -> set[str]:
    from pipelines.generate import build_parser

    return {s.lstrip("-") for action in build_parser()._actions for s in action.option_strings if s.startswith("--")}


def test_dockerfile_builds_on_the_installed_beam_and_ships_the_packages() -> None:
    import re

    import apache_beam

    text = (DEPLOY / "Dockerfile").read_text()
    sdk = re.search(r"^FROM apache/beam_python(\d+\.\d+)_sdk:(\S+)\s*$", text, re.M)
    assert sdk, "the worker image is an Apache Beam SDK image"
    assert sdk.group(2) == apache_beam.__version__, "the image's Beam must be the Beam the job is launched with"
    launcher = re.search(r"^FROM gcr\.io/dataflow-templates-base/python(\d)(\d+)-template-launcher-base\S* AS", text, re.M)
    assert launcher and f"{launcher.group(1)}.{launcher.group(2)}" == sdk.group(1)
    for package in PACKAGES:
        assert re.search(rf"^COPY {package} {package}$", text, re.M), package
    main = re.search(r"^COPY (deploy/\S+\.py) (\S+)$", text, re.M)
    assert main and (REPO / main.group(1)).is_file()
    assert f"ENV FLEX_TEMPLATE_PYTHON_PY_FILE={main.group(2)}" in text


def test_flex_template_parameters_are_options_of_the_command_line() -> None:
    import re

    metadata = json.loads((DEPLOY / "flex_template_metadata.json").read_text())
    parameters = {p["name"]: p for p in metadata["parameters"]}
    assert metadata["name"] and metadata["description"] and len(parameters) == len(metadata["parameters"])
    for name, parameter in parameters.items():
        assert parameter["label"] and parameter["helpText"], name
        for pattern in parameter.get("regexes", []):
            re.compile(pattern)
        known = name in cli_option_names() or unknown_options([f"--{name}=1"]) == []
        assert known, f"{name} is neither a mediagen nor a Beam option"
    required = {"input", "output", "sdk_container_image"}  # workers without the image lack mediagen
    assert {n for n, p in parameters.items() if not p.get("isOptional", False)} == required
    mediagen_options = cli_option_names() - {"help", "progress", "no-progress", "wait", "no-wait"}
    assert mediagen_options <= set(parameters), "every mediagen option can be given to the template"


def test_nightly_launch_request_uses_template_parameters() -> None:
    request = json.loads((DEPLOY / "nightly" / "flex_launch_request.json").read_text())["launchParameter"]
    metadata = json.loads((DEPLOY / "flex_template_metadata.json").read_text())
    known = {p["name"] for p in metadata["parameters"]}
    assert request["containerSpecGcsPath"].startswith("gs://") and request["jobName"]
    assert {"input", "output", "config"} <= set(request["parameters"]) <= known
    assert all(isinstance(v, str) for v in request["parameters"].values()), "launch parameters are strings"
    environment = request["environment"]
    assert request["parameters"]["workers"] == str(environment["maxWorkers"]), (
        "one SDK process per VM: the limits are shared by maxWorkers processes"
    )
    assert "no_use_multiple_sdk_containers" in environment["additionalExperiments"]


def test_airflow_dag_imports_without_airflow_and_passes_known_options() -> None:
    spec = importlib.util.spec_from_file_location("mediagen_nightly_dag", DEPLOY / "nightly" / "mediagen_nightly_dag.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    argv: list[str] = []
    for name, value in module.PIPELINE_OPTIONS.items():
        argv += [f"--{name}={item}" for item in (value if isinstance(value, list) else [value])]
    assert unknown_options(argv) == []
    assert {"input", "output", "config", "workers"} <= set(module.PIPELINE_OPTIONS)


def test_readme_dataflow_commands_use_known_options() -> None:
    import shlex

    readme = (REPO / "README.md").read_text()
    section = readme.split("## Running on Dataflow", 1)[1].split("\n## ", 1)[0]
    commands = [
        " ".join(block.replace("\\\n", " ").split())
        for block in section.split("```")[1::2]
    ]
    launches = [line for c in commands for line in c.split("python -m pipelines.generate")[1:]]
    assert len(launches) >= 2, "the --setup_file and the custom container command lines"
    for launch in launches:
        argv = shlex.split(launch.split(" gcloud ")[0])
        assert unknown_options(argv) == [], launch
        assert {"--runner", "--max_num_workers", "--number_of_worker_harness_threads", "--machine_type"} <= set(argv)
