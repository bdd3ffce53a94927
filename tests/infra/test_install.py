"""Every way Python users install needle works, and none breaks another (DESIGN §9): `pip install .`, an isolated
`pip install -e .`, a wheel in a fresh venv, `make install` (rebuild on import, a build folder per venv), Binder's
postBuild; and `import needle` never needs write access to a build folder.

The fresh-venv installs compile the C++ and the simulator four times (about 12 minutes on two busy cores): they
run with NEEDLE_INSTALL_TESTS=1 (`make test-install`, which CI runs after `make test`) and are skipped by
`make test`.
"""
import os
import re
import subprocess
import sys
import venv
from pathlib import Path

import pytest

import needle
from needle import _editable

ROOT = Path(__file__).resolve().parents[2]
FRESH = pytest.mark.skipif(os.environ.get("NEEDLE_INSTALL_TESTS") != "1",
                           reason="fresh-venv installs take minutes: `make test-install` runs them (CI does)")
SMOKE = (
    "import os, numpy as np, needle as ndl, needle.backend_ndarray as nd\n"
    "assert ndl.cpu().enabled() and nd.cuda_sim().enabled(), 'compiled backends missing'\n"
    "x = ndl.Tensor(np.arange(6.0).reshape(2, 3), device=ndl.cpu())\n"
    "assert float((x @ ndl.transpose(x)).numpy()[1, 1]) == 50.0\n"
    "assert float((nd.array(np.ones(4), device=nd.cuda_sim()) * 2).numpy().sum()) == 8.0\n"
    "print('SMOKE', os.path.dirname(ndl.__file__))\n"
)


def _build_dirs() -> set:
    return {p.name for p in (ROOT / "build").iterdir()} if (ROOT / "build").is_dir() else set()


def fresh_venv(path: Path) -> Path:
    venv.EnvBuilder(with_pip=True, clear=True).create(path)
    py = path / "bin" / "python"
    pip(py, "install", "--quiet", "numpy")
    return py


def pip(py: Path, *args, cwd=ROOT):
    env = {**os.environ, "CMAKE_BUILD_PARALLEL_LEVEL": "2", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    env.pop("PYTHONPATH", None)
    proc = subprocess.run([str(py), "-m", "pip", *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=1500)
    assert proc.returncode == 0, f"pip {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return proc


def smoke(py: Path, cwd: Path) -> str:
    """Imports needle from outside the repository (so the installed one is found) and computes on cpu and cuda_sim."""
    proc = subprocess.run([str(py), "-c", SMOKE], cwd=cwd, capture_output=True, text=True, timeout=600,
                          env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert proc.returncode == 0 and "SMOKE" in proc.stdout, proc.stderr[-4000:]
    assert proc.stderr.strip() == "", f"import printed: {proc.stderr[-2000:]}"
    return proc.stdout.split("SMOKE", 1)[1].strip()


@FRESH
def test_pip_install_dot_in_a_fresh_venv(tmp_path):
    before = _build_dirs()
    py = fresh_venv(tmp_path / "venv")
    pip(py, "install", "--no-deps", ".")
    where = smoke(py, tmp_path)
    assert str(tmp_path) in where  # the installed copy, not the source tree
    assert _build_dirs() == before, "pip install . wrote into the repository's build/"


@FRESH
def test_isolated_editable_install_imports_and_leaves_other_installs_alone(tmp_path):
    """pip's default: build isolation on. Its pybind11 and CMake are gone after the install, so it must not rebuild
    on import, and it must not touch the build folder of the Makefile's venv."""
    before = _build_dirs()
    stamps = {p: p.stat().st_mtime_ns for p in (ROOT / "build").rglob("*.so")} if (ROOT / "build").is_dir() else {}
    py = fresh_venv(tmp_path / "venv")
    pip(py, "install", "--no-deps", "-e", ".")
    where = smoke(py, tmp_path)
    assert Path(where).resolve() == (ROOT / "needle").resolve()
    assert _build_dirs() == before, "an isolated editable install wrote into the repository's build/"
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items() if p.exists()), "it rebuilt another install's modules"
    smoke(Path(sys.executable), tmp_path)  # this test run's own install still imports


@FRESH
def test_a_wheel_installs_in_a_fresh_venv(tmp_path):
    builder = fresh_venv(tmp_path / "builder")
    pip(builder, "wheel", "--no-deps", "-w", str(tmp_path / "dist"), ".")
    wheels = list((tmp_path / "dist").glob("needle-*.whl"))
    assert len(wheels) == 1, wheels
    py = fresh_venv(tmp_path / "venv")
    pip(py, "install", "--no-deps", str(wheels[0]), cwd=tmp_path)
    smoke(py, tmp_path)
    import zipfile

    names = zipfile.ZipFile(wheels[0]).namelist()
    for module in ("ndarray_backend_cpu", "ndarray_backend_cuda_sim", "simple_ml_ext"):
        assert any(module in n and n.endswith(".so") for n in names), f"the wheel lacks {module}"
    assert any(n.startswith("needle/kernels/cuda/") and n.endswith(".cu") for n in names)


@FRESH
def test_binder_postbuild_in_a_copy_of_the_repository(tmp_path):
    """postBuild as repo2docker runs it: build tools in the environment (here a fresh venv that sees this venv's
    packages, as conda's environment.yml provides them), an editable install that rebuilds on import in its own
    build folder, a smoke import, and the workbook."""
    import shutil
    import site

    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.split("\n")
    copy = tmp_path / "repo"
    for name in filter(None, files):
        if (ROOT / name).is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, copy / name)
    env_dir = tmp_path / "env"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    purelib = next((env_dir / "lib").glob("python*/site-packages"))
    (purelib / "outer.pth").write_text("\n".join(site.getsitepackages()) + "\n")  # numpy, nbformat, cmake, ...
    env = {**os.environ, "PATH": f"{env_dir / 'bin'}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "CMAKE_BUILD_PARALLEL_LEVEL": "2", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    env.pop("PYTHONPATH", None)
    proc = subprocess.run([str(copy / "binder" / "postBuild")], cwd=copy, env=env, capture_output=True, text=True,
                          timeout=1500)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    assert "needle backend: cpu()" in proc.stdout
    assert (copy / "exercises" / "00_welcome.ipynb").is_file()
    assert [p.name for p in (copy / "build").iterdir()] == ["binder"]
    where = smoke(env_dir / "bin" / "python", tmp_path)
    assert Path(where).resolve() == (copy / "needle").resolve()
    # rebuild on import: an edit of kernels/ is compiled by the next `import needle`, silently
    source = copy / "kernels" / "cpu" / "ndarray_backend_cpu.cc"
    text = source.read_text()
    end = text.rindex("}")
    source.write_text(text[:end] + '  m.attr("__rebuilt__") = 1;\n' + text[end:])
    proc = subprocess.run([str(env_dir / "bin" / "python"), "-c", "import needle.backend_ndarray as nd; "
                           "print('REBUILT', nd.cpu().mod.__rebuilt__)"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0 and "REBUILT 1" in proc.stdout, proc.stderr[-4000:]
    assert proc.stderr.strip() == "", proc.stderr[-2000:]


def test_pyproject_shares_no_build_folder_and_rebuilds_only_where_asked():
    text = (ROOT / "pyproject.toml").read_text()
    settings = text.split("[tool.scikit-build]", 1)[1].split("\n[", 1)[0]
    assert not re.search(r"^\s*build-dir\s*=", settings, re.M), "a fixed build-dir is shared by every install"
    assert re.search(r"^\s*editable\.rebuild\s*=\s*false", settings, re.M)


def test_the_makefile_and_binder_build_in_folders_of_their_own():
    def make_line(venv_dir):
        out = subprocess.run(["make", "-n", "-B", "install", f"VENV={venv_dir}"], cwd=ROOT, capture_output=True,
                             text=True, check=True).stdout
        return next(line for line in out.splitlines() if "-e " in line and "pip install" in line)

    a, b = make_line("/tmp/venv-a"), make_line("/tmp/venv-b")
    for line in (a, b):
        assert "--no-build-isolation" in line and "-Ceditable.rebuild=true" in line, line
    dir_a, dir_b = (re.search(r"-Cbuild-dir=(\S+?)[\"']?\s", line).group(1) for line in (a, b))
    assert dir_a != dir_b and dir_a.startswith("build/") and "{wheel_tag}" in dir_a
    post = (ROOT / "binder" / "postBuild").read_text()
    assert "-Cbuild-dir=build/binder/" in post and "-Ceditable.rebuild=true" in post


class _FakeFinder:
    """The editable hook's finder as needle sees it (scikit-build-core's ScikitBuildRedirectingFinder)."""

    def __init__(self, path, error=None):
        self.known_source_files = {"needle": "x"}
        self.path, self.rebuild_flag, self.rebuilt, self.error, self.calls = str(path), True, False, error, 0

    def rebuild(self):
        self.calls += 1
        if self.error:
            raise self.error


ScikitBuildRedirectingFinder = type("ScikitBuildRedirectingFinder", (_FakeFinder,), {})


def test_import_keeps_the_last_build_when_the_build_folder_is_read_only(tmp_path, monkeypatch):
    """A shared install: the user may not write build/, where the hook takes its lock (PermissionError)."""
    finder = ScikitBuildRedirectingFinder(tmp_path)
    monkeypatch.setattr(sys, "meta_path", [finder, *sys.meta_path])
    monkeypatch.setattr(_editable.os, "access", lambda path, mode: False)
    _editable.rebuild_once()
    assert finder.calls == 0 and finder.rebuilt  # the hook itself will not try again in this process


def test_import_survives_a_lock_it_cannot_take(tmp_path, monkeypatch):
    finder = ScikitBuildRedirectingFinder(tmp_path, PermissionError(13, "Permission denied", "editable_rebuild.lock"))
    monkeypatch.setattr(sys, "meta_path", [finder, *sys.meta_path])
    with pytest.warns(RuntimeWarning, match="using the last build"):
        _editable.rebuild_once()
    assert finder.calls == 1 and finder.rebuilt


def test_a_compile_error_still_raises(tmp_path, monkeypatch):
    finder = ScikitBuildRedirectingFinder(tmp_path, subprocess.CalledProcessError(1, ["cmake", "--build", "."]))
    monkeypatch.setattr(sys, "meta_path", [finder, *sys.meta_path])
    with pytest.raises(subprocess.CalledProcessError):
        _editable.rebuild_once()


@pytest.mark.skipif(os.geteuid() == 0 or not _editable._needle_finder(), reason="needs a non-root user and make install")
def test_import_needle_with_a_read_only_build_folder_for_real(tmp_path):
    path = Path(_editable._needle_finder().path)
    mode = path.stat().st_mode
    path.chmod(mode & ~0o222)
    try:
        smoke(Path(sys.executable), tmp_path)
    finally:
        path.chmod(mode)


def _system_python():
    """A python of this minor version outside /root (which other users cannot enter), or None."""
    import shutil

    for name in (f"/usr/bin/python{sys.version_info[0]}.{sys.version_info[1]}", "/usr/local/bin/python3"):
        if os.path.exists(name):
            out = subprocess.run([name, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True, text=True)
            if out.stdout.strip() == str(tuple(sys.version_info[:2])):
                return name
    return None


@pytest.mark.skipif(os.geteuid() != 0 or not _editable._needle_finder(), reason="needs root (to become nobody) and make install")
def test_import_needle_as_a_user_who_cannot_write_the_build_folder(tmp_path):
    """A shared install: root built it, another user imports it. Without the guard, scikit-build-core's hook raises
    PermissionError on its lock file in the build folder."""
    import shutil
    import site

    python, setpriv = _system_python(), shutil.which("setpriv")
    if not python or not setpriv:
        pytest.skip("needs setpriv and a system python of this version")
    path = Path(_editable._needle_finder().path)
    if _editable.os.access(path, os.W_OK) and path.stat().st_mode & 0o002:
        pytest.skip("the build folder is writable by everyone")
    code = (f"import site; site.addsitedir({site.getsitepackages()[0]!r})\n"
            "import os, numpy as np, needle as ndl\n"
            "assert os.geteuid() != 0\n"
            "print('OK', float((ndl.Tensor(np.ones(3), device=ndl.cpu()) * 2).numpy().sum()))\n")
    proc = subprocess.run([setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", python, "-c", code],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={"PATH": os.environ["PATH"], "HOME": str(tmp_path)})
    if "Permission denied" in proc.stderr and "editable_rebuild.lock" not in proc.stderr:
        pytest.skip(f"the repository or venv is not readable by other users: {proc.stderr[-300:]}")
    assert proc.returncode == 0 and "OK 6.0" in proc.stdout, proc.stderr[-3000:]
