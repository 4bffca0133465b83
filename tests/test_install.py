"""Installing the course where students do: Colab (torch, transformers and numpy already there, in other
versions) and a fresh machine (`make install`, with PyTorch's CPU index as one variable).

Nothing large is downloaded: installed packages are stood in for by their metadata alone, and pip only
*resolves* the install (``--dry-run --report``), fetching metadata from the index for what it must change.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from course import ROOT
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from interplab.colab import PIN_FILE, Source

#: What a Colab runtime has before the set-up cell runs (its CUDA build of torch, older transformers).
COLAB = {"torch": "2.9.0+cu126", "transformers": "4.57.1", "numpy": "2.0.2"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The course's wheel, built from a clean copy of the sources (never from a stale build/ folder)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        (src / name).write_bytes((ROOT / name).read_bytes())
    shutil.copytree(ROOT / "interplab", src / "interplab", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
                            "-w", str(tmp / "dist"), str(src)], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    return next((tmp / "dist").glob("interplab-*.whl"))


def _fake_installed(site_packages: Path, name: str, version: str, metadata: str | None = None) -> None:
    """A distribution pip sees as installed: its metadata (its requirements included), without its files."""
    info = site_packages / f"{name}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(metadata or f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "INSTALLER").write_text("pip\n")
    (info / "RECORD").write_text("")


def colab_like(where: Path) -> Path:
    """An environment like a Colab runtime: the common scientific stack already installed (here, the
    metadata of every distribution this test runs with, the course aside), with Colab's own torch,
    transformers and numpy in place of ours."""
    from importlib.metadata import distributions

    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True)
    site_packages = next(where.glob("lib/python*/site-packages"))
    for dist in distributions():
        name = canonicalize_name(dist.metadata["Name"])
        if name not in COLAB and name != "interplab" and not (site_packages / f"{name}-{dist.version}.dist-info").exists():
            _fake_installed(site_packages, name, dist.version, dist.read_text("METADATA"))
    for name, version in COLAB.items():
        _fake_installed(site_packages, name, version)
    return where / "bin" / "python"


def test_colab_setup_cell_keeps_colabs_torch_and_leaves_the_course_importable(wheel, tmp_path):
    python = colab_like(tmp_path / "colab")

    # Run the stamped set-up cell as Colab would, in that environment: its Python writes the pin file,
    # its %pip line installs (here: resolves) the course, with the wheel standing in for the git URL.
    setup = Source.read(ROOT).setup_cell()
    pins = tmp_path / "pins.txt"
    body = [line.strip() for line in setup.splitlines()[setup.splitlines().index(
        next(l for l in setup.splitlines() if "google.colab" in l)) + 1:]]
    python_lines = [line.replace(PIN_FILE, str(pins)) for line in body if line and not line.startswith("%pip")]
    subprocess.run([str(python), "-c", "\n".join(python_lines)], check=True)
    assert pins.read_text() == f"torch=={COLAB['torch']}\n"
    pip_line = next(line for line in body if line.startswith("%pip install"))
    args = [a.strip('"') for a in re.findall(r'"[^"]*"|\S+', pip_line.removeprefix("%pip install"))]
    args = [str(pins) if a == PIN_FILE else str(wheel) if a == Source.read(ROOT).requirement else a for a in args]
    report = tmp_path / "report.json"
    resolved = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--dry-run",
         "--disable-pip-version-check", "--report", str(report), *args],
        capture_output=True, text=True)
    if resolved.returncode != 0 and re.search(r"(?i)connection|network|temporary failure|max retries", resolved.stderr):
        pytest.skip(f"the package index cannot be reached: {resolved.stderr[-300:]}")
    assert resolved.returncode == 0, resolved.stderr[-3000:]

    install = {canonicalize_name(i["metadata"]["name"]): i["metadata"] for i in json.loads(report.read_text())["install"]}
    assert "torch" not in install, "the set-up cell would replace Colab's torch"
    assert "interplab" in install
    # After the install, every requirement of the course (and of what it pulls in) is met.
    from importlib.metadata import distributions

    final = {canonicalize_name(d.metadata["Name"]): Version(d.version) for d in distributions()}
    final |= {canonicalize_name(n): Version(v) for n, v in COLAB.items()}
    final |= {n: Version(m["version"]) for n, m in install.items()}
    for name, meta in install.items():
        for text in meta.get("requires_dist", []):
            req = Requirement(text)
            if req.marker is not None and not req.marker.evaluate({"extra": ""}):
                continue
            have = final.get(canonicalize_name(req.name))
            assert have is not None and req.specifier.contains(have, prereleases=True), f"{name} needs {req}, gets {have}"


def test_the_wheel_carries_everything_a_student_needs(wheel, tmp_path):
    """Unpacked on its own (no source tree), the wheel has the shipped models and checks an answer."""
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        z.extractall(tmp_path / "site")
        entry_points = next(n for n in names if n.endswith("entry_points.txt"))
        assert "interplab = interplab.cli:main" in z.read(entry_points).decode()
    assert any(n.startswith("interplab/shipped/attn-only-2l/") for n in names)
    assert any(n.startswith("interplab/references/02_induction/") for n in names)
    assert not any(n.startswith(("solutions/", "autograder/", "tests/")) for n in names)
    script = """
import interplab, torch
from pathlib import Path
assert Path(interplab.__file__).is_relative_to(Path(SITE)), interplab.__file__
from interplab.models import SHIPPED
from interplab.checker import Lab
assert all(p.is_relative_to(Path(SITE)) and (p / "model.safetensors").is_file() for p in SHIPPED.values())
verdict = Lab("03_superposition").verdict("dimensions_per_feature", lambda W: W.shape[1] / W.pow(2).sum(dim=(1, 2)))
assert verdict.passed, verdict.message
print("ok", len(SHIPPED))
""".replace("SITE", repr(str(tmp_path / "site")))
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site"), "HF_HUB_OFFLINE": "1"}
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert run.returncode == 0 and "ok" in run.stdout, run.stderr[-2000:]


def _make_dry_run(*variables: str) -> list[str]:
    dry = subprocess.run(["make", "-n", "-B", "install", "VENV=/nonexistent-venv", *variables], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    return [line for line in dry.splitlines() if "pip" in line and "install" in line]


def test_make_install_takes_pytorchs_cpu_index_as_one_variable():
    torch_line, course_line = _make_dry_run("TORCH_INDEX=https://download.pytorch.org/whl/cpu")
    assert "--index-url https://download.pytorch.org/whl/cpu" in torch_line and '"torch==2.13.0"' in torch_line
    assert "--index-url" not in course_line  # only torch comes from PyTorch's index
    plain_torch, _ = _make_dry_run()
    assert "--index-url" not in plain_torch  # pip's own configuration decides (here: a CPU wheel)
    readme = (ROOT / "README.md").read_text()
    assert "make install TORCH_INDEX=https://download.pytorch.org/whl/cpu" in readme and "CUDA" in readme
