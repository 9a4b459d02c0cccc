"""The command line a newcomer meets first: version, plugin listing, plugin errors, optional
extras, help text and what a light command imports."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from recoverkit.cli import main

HEAVY = (
    "recoverkit.service",
    "recoverkit.store",
    "recoverkit.sandbox",
    "recoverkit.demo",
    "sqlalchemy",
    "alembic",
    "uvicorn",
    "starlette",
)


def _python(code: str, *, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("recoverkit ")
    assert out.split()[1][0].isdigit()


def test_plugins_json_lists_every_installed_provider(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugins", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    by_name = {row["provider"]: row for row in rows}
    assert by_name["stripe"]["distribution"] == "recoverkit-stripe"
    assert "webhooks" in by_name["stripe"]["capabilities"]


def test_an_unknown_name_in_load_plugins_is_an_error_naming_the_installed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RECOVERKIT_LOAD_PLUGINS", "strip")
    assert main(["plugins"]) == 2
    err = capsys.readouterr().err
    assert "'strip'" in err
    assert "installed: adyen, braintree, stripe" in err
    assert len(err.strip().splitlines()) == 1


def test_light_commands_do_not_import_the_service_store_or_sandbox() -> None:
    code = textwrap.dedent(
        f"""
        import sys
        from recoverkit.cli import main
        main(["plugins", "--json"])
        heavy = sorted(m for m in sys.modules if m.startswith({HEAVY!r}))
        print(heavy)
        """
    )
    result = _python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_a_plugin_that_fails_to_import_is_named_once_with_the_escape(tmp_path: Path) -> None:
    (tmp_path / "broken_psp.py").write_text("raise ImportError('no module named psp_sdk')\n")
    dist = tmp_path / "broken_psp-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-psp\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[recoverkit]\nbroken = broken_psp\n")
    env = {"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"}
    code = "import sys; from recoverkit.cli import main; sys.exit(main(sys.argv[1:]))"
    result = subprocess.run(
        [sys.executable, "-c", code, "translate", "stripe", "-", "--no-verify"],
        input="{}",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "plugin 'broken' from broken-psp" in lines[0]
    assert "RECOVERKIT_DISABLE_PLUGINS=broken" in lines[0]
    assert "no module named psp_sdk" in lines[0]
    skipped = subprocess.run(
        [sys.executable, "-c", code, "plugins", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**env, "RECOVERKIT_DISABLE_PLUGINS": "broken"},
    )
    assert skipped.returncode == 0, skipped.stderr
    assert "stripe" in skipped.stdout


def test_simulate_without_the_sandbox_extra_names_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("numpy", "sklearn"):
        monkeypatch.setitem(sys.modules, name, None)  # import raises ModuleNotFoundError
    assert main(["simulate", "--invoices", "10"]) == 2
    err = capsys.readouterr().err
    assert 'pip install "recoverkit[sandbox]"' in err
    assert "Traceback" not in err


def test_help_shows_types_only_where_they_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COLUMNS", "120")
        assert main(["translate", "--help"]) == 0
    out = capsys.readouterr().out
    assert "<bool>" not in out
    assert "<str>" not in out
    assert "--facts" in out
    assert "FILE" in out


def test_postgres_without_the_postgres_extra_names_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # import raises ModuleNotFoundError
    monkeypatch.setenv("RECOVERKIT_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/absent")
    assert main(["db", "upgrade"]) == 2
    err = capsys.readouterr().err
    assert 'pip install "recoverkit[postgres]"' in err
    assert "Traceback" not in err
