"""Binder and conda set-up: both environment files match pyproject's dependencies, postBuild builds and writes the
workbook, the README badge opens the welcome workbook, and repo2docker accepts the repository."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

try:
    import tomllib
except ImportError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
BUILD_TOOLS = {"cmake", "ninja", "cxx-compiler"}  # not Python packages: what conda needs to compile kernels/


def spec_map(specs):
    """{name: version spec} from 'name>=1.0' strings (PEP 508 names normalised to lower case with dashes)."""
    out = {}
    for spec in specs:
        name, version = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$", spec).groups()
        out[name.lower().replace("_", "-")] = version.replace(" ", "")
    return out


def conda_packages(path):
    deps = yaml.safe_load(path.read_text())["dependencies"]
    return spec_map(d for d in deps if isinstance(d, str)), [d for d in deps if isinstance(d, dict)]


RUNTIME = spec_map(PYPROJECT["project"]["dependencies"])
BUILD = spec_map(PYPROJECT["build-system"]["requires"])
MPI = {"mpi4py": ">=4.0", "mpich": ">=4.2"}  # the mpi extra, from conda-forge (chapter 10 runs mpirun)


@pytest.mark.parametrize("env_file", ["binder/environment.yml", "environment.yml"])
def test_environment_matches_pyproject(env_file):
    packages, pip_sections = conda_packages(ROOT / env_file)
    from_pypi = spec_map(line for section in pip_sections for line in section["pip"]
                         if not line.startswith("-") and "#" not in line.split()[0])
    assert yaml.safe_load((ROOT / env_file).read_text())["channels"] == ["conda-forge"]
    for name, version in {**RUNTIME, **BUILD, **MPI}.items():
        got = packages.get(name, from_pypi.get(name))
        assert got == version, f"{env_file}: {name}{version} (from pyproject) is missing or differs"
    extra = set(packages) - set(RUNTIME) - set(BUILD) - set(MPI) - BUILD_TOOLS - {"python", "pip"}
    assert not extra, f"{env_file} lists packages that pyproject does not: {sorted(extra)}"


def test_local_environment_pip_installs_the_project():
    _, pip_sections = conda_packages(ROOT / "environment.yml")
    lines = [line for section in pip_sections for line in section["pip"]]
    assert any(re.match(r"-e \.(\[dev\])?(\s|$)", line) for line in lines), lines


def test_postbuild_builds_needle_and_writes_the_workbook():
    post = ROOT / "binder" / "postBuild"
    assert os.access(post, os.X_OK)
    text = post.read_text()
    install = next(line for line in text.splitlines() if "pip install" in line)
    for part in ("--no-deps", "--no-build-isolation", "-Ceditable.rebuild=true", "-Cbuild-dir=build/binder/", " -e ."):
        assert part in install, f"postBuild's install lacks {part!r}: {install}"
    assert "needle-course workbook --out exercises" in text
    assert "march=native" not in (ROOT / "CMakeLists.txt").read_text().replace("no -march=native", "")


def test_readme_badge_opens_the_welcome_workbook_in_jupyterlab():
    readme = (ROOT / "README.md").read_text()
    badge = re.search(r"\(https://mybinder\.org/v2/gh/[^)\s]+\)", readme)
    assert badge, "README has no Binder badge link"
    assert "urlpath=lab/tree/exercises/00_welcome.ipynb" in badge.group(0)


def test_repo2docker_accepts_the_repository():
    pytest.importorskip("repo2docker")
    proc = subprocess.run([sys.executable, "-m", "repo2docker", "--no-build", "--debug", str(ROOT)],
                          capture_output=True, text=True, timeout=180)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    assert "Building conda environment for python=3.11" in log
    assert "RUN ./binder/postBuild" in log
