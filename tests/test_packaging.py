"""What `pip install dopr-robot` gets: declared dependencies, the Python and library bounds the
code needs, the presets inside the wheel, and imports that leave the user's process alone."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
REQUIREMENTS = {
    Requirement(line).name.lower(): Requirement(line)
    for line in PYPROJECT["project"]["dependencies"]
}
OPTIONAL = {
    Requirement(line).name.lower()
    for extra in PYPROJECT["project"]["optional-dependencies"].values()
    for line in extra
}
#: import name -> distribution name, where they differ
DISTRIBUTIONS = {"PIL": "pillow", "imageio_ffmpeg": "imageio", "yaml": "pyyaml"}


def _imported_top_level_modules() -> set[str]:
    names = set()
    for path in (ROOT / "dopr_robot").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"dopr_robot"}


def test_every_imported_library_is_declared():
    missing = sorted(
        name
        for name in _imported_top_level_modules()
        if DISTRIBUTIONS.get(name, name).lower().replace("_", "-") not in REQUIREMENTS
        and DISTRIBUTIONS.get(name, name).lower().replace("_", "-") not in OPTIONAL
    )
    assert missing == []


def test_declared_bounds_match_what_the_code_needs():
    # tomllib is 3.11+
    assert PYPROJECT["project"]["requires-python"].startswith(">=3.11")
    # gp.py uses torch's private functional Muon core: bounded to the tested releases
    torch_spec = REQUIREMENTS["torch"].specifier
    assert any(s.operator == "<" for s in torch_spec)
    import torch

    assert Version(torch.__version__.split("+")[0]) in torch_spec
    # the crash-safety claim rests on zarr writing each file atomically, which 3.1.3 added
    assert Version("3.1.2") not in REQUIREMENTS["zarr"].specifier
    assert Version("3.1.3") in REQUIREMENTS["zarr"].specifier


def _run(code: str, env: dict | None = None, cwd: Path | None = None) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_importing_the_plotting_modules_keeps_the_users_matplotlib_backend():
    code = (
        "import matplotlib; matplotlib.use('svg')\n"
        "import dopr_robot.eval.plots, dopr_robot.eval.checkpoint_sweep, dopr_robot.study.figures\n"
        "print(matplotlib.get_backend())"
    )
    assert _run(code) == "svg"


def test_importing_envs_sets_mujoco_gl_only_when_unset():
    code = "import os, dopr_robot.envs; print(os.environ['MUJOCO_GL'])"
    assert _run(code, {"MUJOCO_GL": "glfw"}) == "glfw"  # a user's choice is kept
    env = {k: v for k, v in os.environ.items() if k != "MUJOCO_GL"}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.stdout.strip() == "egl", result.stderr


def test_the_wheel_carries_the_presets_and_they_load_from_another_folder(tmp_path):
    """Build the wheel, install it (without dependencies: this environment has them) into a
    folder of its own, and read every preset from there, run from an unrelated directory."""
    source = tmp_path / "source"  # a copy: building in the checkout would leave build/ there
    shutil.copytree(
        ROOT / "dopr_robot", source / "dopr_robot", ignore=shutil.ignore_patterns("__pycache__")
    )
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path / "dist"), str(source)],
        check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    (wheel,) = (tmp_path / "dist").glob("dopr_robot-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for preset in ("quick", "default", "full"):
        assert f"dopr_robot/study/presets/{preset}.toml" in names
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q",
         "--target", str(tmp_path / "site"), str(wheel)],
        check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code = (
        "import dopr_robot\n"
        "from dopr_robot.study.config import load_study, preset_path\n"
        "print(dopr_robot.__file__)\n"
        "print(','.join(load_study(preset_path(p)).name for p in ('quick', 'default', 'full')))"
    )
    location, names = _run(code, {"PYTHONPATH": str(tmp_path / "site")}, elsewhere).splitlines()
    assert location.startswith(str(tmp_path / "site"))
    assert names == "quick,default,full"
