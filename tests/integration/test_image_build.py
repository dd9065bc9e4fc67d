"""The image's build stage, without a container engine: the wheel that ``deploy/Dockerfile``
builds from exactly the files it copies holds everything the processes read at run time."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "deploy" / "Dockerfile"


def _build_stage_copies() -> list[str]:
    """The sources of the build stage's ``COPY`` instructions (before the second ``FROM``)."""
    sources: list[str] = []
    stages = 0
    for line in DOCKERFILE.read_text().splitlines():
        words = shlex.split(line, comments=True)
        if not words:
            continue
        if words[0].upper() == "FROM":
            stages += 1
            if stages > 1:
                break
        elif words[0].upper() == "COPY" and not any(w.startswith("--from") for w in words):
            sources.extend(words[1:-1])
    return sources


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    context = tmp_path_factory.mktemp("context")
    for source in _build_stage_copies():
        path = ROOT / source
        if path.is_dir():  # COPY keeps the links inside a directory as links
            shutil.copytree(path, context / source, symlinks=True)
        else:
            shutil.copy2(path, context / source)
    out = tmp_path_factory.mktemp("wheels")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(out), "."],
        cwd=context,
        check=True,
        capture_output=True,
        timeout=600,
    )
    (built,) = out.glob("parkstream-*.whl")
    return built


def test_the_build_stage_copies_files_that_exist() -> None:
    sources = _build_stage_copies()
    assert {"pyproject.toml", "src", "projections", "streams"} <= set(sources)
    assert all((ROOT / s).exists() for s in sources), sources


def test_the_wheel_holds_the_migrations_catalogue_dashboard_and_contract(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())

        def read(name: str) -> bytes:
            return zf.read(f"parkstream/{name}")

        for sql in sorted((ROOT / "projections").glob("*.sql")):
            assert read(f"projector/migrations/{sql.name}") == sql.read_bytes()
        assert read("catalogue/topics.toml") == (ROOT / "streams/topics.toml").read_bytes()
        for static in (ROOT / "src/parkstream/api/static").iterdir():
            assert f"parkstream/api/static/{static.name}" in names
        assert "parkstream/schemas/asyncapi.json" in names
        assert "parkstream/py.typed" in names
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        assert "parkstream = parkstream.cli:main" in zf.read(entry_points).decode()


def test_the_packaged_code_finds_its_migrations_and_topics(wheel: Path, tmp_path: Path) -> None:
    """Run from the unpacked wheel alone (not this checkout): what ``parkstream migrate``
    and ``parkstream topics apply`` load in the image."""
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(tmp_path / "site")
    script = (
        "import parkstream, pathlib, sys\n"
        "from parkstream.catalogue import load_catalogue\n"
        "from parkstream.projector.migrate import load_migrations\n"
        "assert pathlib.Path(parkstream.__file__).is_relative_to(sys.argv[1])\n"
        "print(len(load_migrations()), len(load_catalogue()))\n"
    )
    done = subprocess.run(
        [
            sys.executable,
            "-I",
            "-c",
            f"import sys; sys.path.insert(0, {str(tmp_path / 'site')!r})\n" + script,
            str(tmp_path / "site"),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    migrations, topics = map(int, done.stdout.split())
    assert migrations == len(list((ROOT / "projections").glob("*.sql")))
    assert topics > 0
