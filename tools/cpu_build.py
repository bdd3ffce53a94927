"""Another build of the C++ CPU backend beside the installed one: another compiler (clang), or no OpenMP.

    python tools/cpu_build.py build DIR [--cxx clang++] [--no-openmp]
        configures and builds only ndarray_backend_cpu into DIR (CMake + Ninja from the venv)
    python tools/cpu_build.py run DIR [ARGS ...]
        runs `python ARGS` (e.g. `-m pytest tests/backend/test_cpu_kernels.py`, `-m benchmarks ndarray`) with
        needle using DIR's module instead of the installed one (the environment variable
        NEEDLE_CPU_MODULE names it, so subprocesses and pytest-xdist workers use it too)

CI runs the kernel tests this way on a clang build (see .ci/run); `make bench-compilers` compares a clang
and a GCC build with numpy in one run. Standard library only.
"""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def build(out: Path, cxx: str | None = None, openmp: bool = True) -> Path:
    """Configures and builds ndarray_backend_cpu into `out`; returns the module's path."""
    import pybind11  # the venv's build tools (make install puts them there)

    cmake = shutil.which("cmake", path=str(Path(sys.executable).parent)) or "cmake"
    args = [cmake, "-S", str(ROOT), "-B", str(out), "-DCMAKE_BUILD_TYPE=Release",
            f"-DPython_EXECUTABLE={sys.executable}", f"-Dpybind11_DIR={pybind11.get_cmake_dir()}"]
    if shutil.which("ninja", path=str(Path(sys.executable).parent)) or shutil.which("ninja"):
        args += ["-G", "Ninja"]
    if cxx:
        args.append(f"-DCMAKE_CXX_COMPILER={cxx}")
    if not openmp:
        args.append("-DNEEDLE_OPENMP=OFF")
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    for cmd in (args, [cmake, "--build", str(out), "--target", "ndarray_backend_cpu"]):
        res = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if res.returncode != 0:  # the build's own output only when it failed
            sys.stdout.write(res.stdout)
            raise SystemExit(f"cpu_build: {' '.join(cmd)} failed")
    return module_path(out)


def module_path(out: Path) -> Path:
    found = glob.glob(str(Path(out) / "ndarray_backend_cpu*.so")) + glob.glob(str(Path(out) / "ndarray_backend_cpu*.pyd"))
    if not found:
        raise FileNotFoundError(f"no ndarray_backend_cpu module in {out}")
    return Path(found[0])


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[0] == "build":
        cxx = argv[argv.index("--cxx") + 1] if "--cxx" in argv else None
        print(build(Path(argv[1]), cxx, openmp="--no-openmp" not in argv))
        return 0
    if len(argv) >= 2 and argv[0] == "run":
        env = dict(os.environ, NEEDLE_CPU_MODULE=str(module_path(Path(argv[1])).resolve()))
        return subprocess.call([sys.executable, *argv[2:]], cwd=ROOT, env=env)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
