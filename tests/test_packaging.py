"""Every third-party module the package imports is a declared dependency.

A test environment installs the test extra too, so a missing runtime dependency would
otherwise only show on a user's `pip install .` (numpy once did exactly that).
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import shutil
import subprocess
import sys
import tomllib
import types
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return {
        normalize(re.split(r"[\s\[<>=!~;]", dep, maxsplit=1)[0]) for dep in project["dependencies"]
    }


def imported_modules() -> set[str]:
    found: set[str] = set()
    for path in (ROOT / "digest").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    # _typeshed exists only for the type checker (imported under TYPE_CHECKING).
    return found - set(sys.stdlib_module_names) - {"digest", "__future__", "_typeshed"}


def test_every_imported_distribution_is_a_declared_dependency() -> None:
    owners = importlib.metadata.packages_distributions()
    modules = imported_modules()
    assert {"sumy", "numpy", "feedparser"} <= modules
    missing = {
        m: owners.get(m)
        for m in modules
        if not any(normalize(d) in declared() for d in owners.get(m, [m]))
    }
    assert not missing, f"imported but not in [project].dependencies: {missing}"


HEAVY = ("nltk", "sumy", "trafilatura", "premailer", "numpy", "lxml", "sqlalchemy", "apscheduler")


def test_the_cli_starts_without_the_heavy_libraries() -> None:
    """`digest --help` must not pay for the summarizer, extractor, renderer or database."""
    code = (
        f"import sys, digest, digest.cli; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == "", f"imported at start-up: {out.stdout.strip()}"


def test_collecting_does_not_load_the_summarizer_or_renderer() -> None:
    """`digest collect` imports the pipeline: it must not pay for nltk, sumy or premailer."""
    later = ("nltk", "sumy", "numpy", "premailer")
    code = f"import sys, digest.pipeline; print(','.join(m for m in {later!r} if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == "", f"imported with the pipeline: {out.stdout.strip()}"


def test_public_api_names_resolve_and_no_name_shadows_a_module() -> None:
    import digest

    for name in digest.__all__:
        assert getattr(digest, name) is not None, name
    for stage in ("collect", "summarize", "compose", "render", "mail", "store", "web", "cli"):
        module = importlib.import_module(f"digest.{stage}")
        assert isinstance(module, types.ModuleType)
        assert stage not in digest.__all__
    # Every DigestError subclass is exported from the one error module.
    import digest.errors as errors

    tree = {n for n, v in vars(errors).items() if isinstance(v, type)}
    assert tree <= set(digest.__all__)


def test_a_wheel_built_from_the_sdist_ships_templates_and_sample(tmp_path: Path) -> None:
    """`python -m build` (sdist, then a wheel from it) carries the top-level templates."""
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    src = tmp_path / "src"
    for name in tracked:
        if (ROOT / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
    out = tmp_path / "dist"
    done = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(src)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    (wheel,) = out.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for template in ("base.html", "digest.html", "digest.txt"):
        assert f"digest/render/templates/{template}" in names
    assert "digest/sample/feed.xml" in names
    for page in ("page.html", "subscribe.html", "confirm.html", "preferences.html"):
        assert f"digest/web/templates/web/{page}" in names
    assert "digest/config/sample.toml" in names
    assert not any(n.startswith(("tests/", "bench/")) for n in names)


def test_command_modules_load_only_when_their_command_runs() -> None:
    """`digest.cli` names every command but imports a command's module on first use."""
    code = (
        "import sys, click, digest.cli as c\n"
        "def loaded():\n"
        "    mods = [m[11:] for m in sys.modules if m.startswith('digest.cli.')]\n"
        "    return sorted('digest.cli.' + m for m in mods if m != 'app')\n"
        "print(loaded())\n"
        "ctx = click.Context(c.cli)\n"
        "print(c.cli.get_command(ctx, 'subscribers').name, loaded())\n"
        "names = c.cli.list_commands(ctx)\n"
        "print(len(names), all(c.cli.get_command(ctx, n) for n in names))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    first, second, third = out.stdout.splitlines()
    assert first == "[]"
    assert second == "subscribers ['digest.cli.subscribers']"
    assert third == f"{len(digest_cli_commands())} True"


def digest_cli_commands() -> dict[str, tuple[str, str]]:
    from digest.cli import COMMANDS

    return COMMANDS
