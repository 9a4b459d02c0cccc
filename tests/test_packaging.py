"""What a user installs from the package index works on its own ("Done means" of issue 15).

- Each sdist holds its own distribution only (no plugins, tests, cassettes or CI in the core's).
- The core and the Stripe plugin, built into wheels and installed into a fresh virtual environment
  (no editable installs, nothing from this checkout on ``sys.path``), run: a core-only install
  says which extra to install; with the plugin, ``recoverkit plugins``, ``translate --offline``
  on each bundled sample and ``recoverkit demo`` succeed.

pip fetches the wheels' dependencies from the package index through its normal cache, so a warm
run takes about half a minute (a cold cache downloads ~40 MB once). Every PSP API base points at a
closed port and no API key is set, so nothing here can call a PSP.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PROJECTS = {
    "recoverkit": REPO,
    "recoverkit-stripe": REPO / "plugins" / "recoverkit-stripe",
    "recoverkit-braintree": REPO / "plugins" / "recoverkit-braintree",
    "recoverkit-adyen": REPO / "plugins" / "recoverkit-adyen",
}
CLOSED = "http://127.0.0.1:9"


def _run(args: list[str], *, cwd: Path, env: dict[str, str] | None = None, timeout: int = 300):
    return subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def _build(project: Path, target: str, out: Path) -> Path:
    hatchling = Path(sys.executable).with_name("hatchling")
    assert hatchling.is_file(), "hatchling (the dev extra) is needed to build"
    result = _run([str(hatchling), "build", "-t", target, "-d", str(out)], cwd=project)
    assert result.returncode == 0, result.stdout + result.stderr
    suffix = ".whl" if target == "wheel" else ".tar.gz"
    (built,) = [p for p in out.iterdir() if p.name.endswith(suffix)]
    return built


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("dist")
    wheels = {}
    for name in ("recoverkit", "recoverkit-stripe"):
        wheels[name] = _build(PROJECTS[name], "wheel", root / name)
    return wheels


# -- metadata and sdists ---------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(PROJECTS))
def test_every_distribution_has_urls_classifiers_licence_and_pins_the_core(name: str) -> None:
    project = tomllib.loads((PROJECTS[name] / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0"
    assert (PROJECTS[name] / "LICENSE").read_text().startswith(" " * 33 + "Apache License")
    assert {"Homepage", "Source", "Issues"} <= set(project["urls"])
    versions = {
        c for c in project["classifiers"] if c.startswith("Programming Language :: Python :: 3.")
    }
    assert versions == {f"Programming Language :: Python :: 3.{m}" for m in (11, 12, 13)}
    if name != "recoverkit":
        assert "recoverkit>=0.1,<0.2" in project["dependencies"]


def test_core_extras_name_every_plugin_and_postgres_is_optional() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    assert {"stripe", "braintree", "adyen", "all", "sandbox", "postgres"} <= set(extras)
    for plugin in ("stripe", "braintree", "adyen"):
        assert extras[plugin] == [f"recoverkit-{plugin}>=0.1,<0.2"]
    assert not any(dep.startswith("psycopg") for dep in project["dependencies"])
    assert any(dep.startswith("psycopg") for dep in extras["postgres"])


@pytest.mark.parametrize("name", sorted(PROJECTS))
def test_each_sdist_holds_its_own_distribution_only(name: str, tmp_path: Path) -> None:
    sdist = _build(PROJECTS[name], "sdist", tmp_path)
    with tarfile.open(sdist) as archive:
        members = [m.split("/", 1)[1] for m in archive.getnames() if "/" in m]
    package = "src/" + name.replace("-", "_") + "/"
    allowed = {"pyproject.toml", "README.md", "LICENSE", "PKG-INFO", ".gitignore"}
    strays = sorted(m for m in members if not m.startswith(package) and m not in allowed)
    assert not strays, strays
    assert any(m.endswith(".py") for m in members)


# -- a clean install ---------------------------------------------------------------------------


def _env(home: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("RECOVERKIT_", "PYTHON", "VIRTUAL_ENV"))
    }
    env.update(
        HOME=str(home),
        COLUMNS="200",
        RECOVERKIT_STRIPE_API_BASE=CLOSED,
        PIP_DISABLE_PIP_VERSION_CHECK="1",
    )
    if "PIP_CACHE_DIR" not in env:  # keep using the user's cache although HOME moved
        env["PIP_CACHE_DIR"] = str(Path.home() / ".cache" / "pip")
    return env


def test_wheels_installed_in_a_clean_venv_work(dist: dict[str, Path], tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    env = _env(tmp_path)
    made = _run([sys.executable, "-m", "venv", str(venv)], cwd=tmp_path, env=env)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    recoverkit = str(venv / "bin" / "recoverkit")
    pip = [str(python), "-m", "pip", "install", "--quiet"]

    # The core alone: it says which extra brings a provider, or the sandbox.
    core = _run([*pip, str(dist["recoverkit"])], cwd=tmp_path, env=env, timeout=600)
    assert core.returncode == 0, core.stdout + core.stderr
    where = _run(
        [str(python), "-c", "import recoverkit; print(recoverkit.__file__)"], cwd=tmp_path, env=env
    )
    assert str(venv) in where.stdout, "the clean venv imports recoverkit from elsewhere"
    plugins = _run([recoverkit, "plugins"], cwd=tmp_path, env=env)
    assert plugins.returncode == 0
    assert 'pip install "recoverkit[stripe]"' in plugins.stdout
    demo = _run([recoverkit, "demo"], cwd=tmp_path, env=env)
    assert demo.returncode == 1
    assert 'pip install "recoverkit[stripe]"' in demo.stdout
    simulate = _run([recoverkit, "simulate"], cwd=tmp_path, env=env)
    assert simulate.returncode == 2, simulate.stdout + simulate.stderr
    assert 'pip install "recoverkit[sandbox]"' in simulate.stderr
    assert "Traceback" not in simulate.stderr

    # With the Stripe plugin's wheel.
    stripe = _run([*pip, str(dist["recoverkit-stripe"])], cwd=tmp_path, env=env, timeout=600)
    assert stripe.returncode == 0, stripe.stdout + stripe.stderr
    listed = _run([recoverkit, "plugins", "--json"], cwd=tmp_path, env=env)
    assert listed.returncode == 0, listed.stderr
    (row,) = [json.loads(line) for line in listed.stdout.splitlines()]
    assert (row["provider"], row["distribution"], row["version"]) == (
        "stripe",
        "recoverkit-stripe",
        "0.1.0",
    )
    found = _run(
        [
            str(python),
            "-c",
            "import recoverkit_stripe, pathlib; "
            "print(pathlib.Path(recoverkit_stripe.__file__).parent / 'samples')",
        ],
        cwd=tmp_path,
        env=env,
    )
    samples = Path(found.stdout.strip())
    assert samples.is_relative_to(venv)
    bodies = sorted(p for p in samples.glob("*.json") if p.name != "objects.json")
    assert len(bodies) == 3
    for body in bodies:
        translated = _run(
            [recoverkit, "translate", "stripe", str(body), "--no-verify", "--offline"],
            cwd=tmp_path,
            env=env,
        )
        assert translated.returncode == 0, f"{body.name}: {translated.stderr}"
        for line in translated.stdout.splitlines():
            shown = json.loads(line)
            assert "endpoint" in shown or "offline" in shown, line
    demo = _run([recoverkit, "demo"], cwd=tmp_path, env=env)
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr
    assert "demo summary" in demo.stdout
