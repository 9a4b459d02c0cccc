"""The quick start's commands run exactly as printed, with no PSP account and no network.

The ``console`` block after "Try it offline" in README.md and after "Install and try it offline"
in docs/quickstart.md must be the same; each ``$ recoverkit …`` line of it is run, as written, by
the ``recoverkit`` script of this environment in an empty folder. Every PSP API base points at a
closed port and no API key is set, so a command that tried to reach a PSP would fail. (The
``pip install`` line above the block is what tests/test_packaging.py proves with built wheels.)
The quick start's other examples run too, except templates (``…``, ``[optional]`` parts or
placeholders in capitals such as ``PROVIDER``).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CLOSED = "http://127.0.0.1:9"


def _block_after(path: Path, heading: str) -> list[str]:
    text = path.read_text(encoding="utf-8")
    section = text.split(f"## {heading}\n", 1)[1]
    match = re.search(r"^```console\n(.*?)^```", section, re.DOTALL | re.MULTILINE)
    assert match, f"{path.name}: no console block under {heading!r}"
    return [line[2:] for line in match.group(1).splitlines() if line.startswith("$ ")]


README = _block_after(REPO / "README.md", "Try it offline")
QUICKSTART = _block_after(REPO / "docs" / "quickstart.md", "Install and try it offline")


_PLACEHOLDER = re.compile(r"…|\[|\b[A-Z][A-Z_]*[A-Z](?:\.json)?\b")


def _runnable_examples(path: Path) -> list[str]:
    """Every ``$ recoverkit …`` line of the page's console blocks that is not a template (no
    ``…``, no ``[optional]`` part, no placeholder in capitals such as ``PROVIDER``)."""
    text = path.read_text(encoding="utf-8")
    lines = []
    for block in re.findall(r"^```console\n(.*?)^```", text, re.DOTALL | re.MULTILINE):
        for line in block.splitlines():
            if line.startswith("$ recoverkit ") and not _PLACEHOLDER.search(line[2:]):
                lines.append(line[2:])
    return lines


def test_readme_and_quickstart_show_the_same_commands() -> None:
    assert README == QUICKSTART
    assert any(" --offline" in line for line in README)
    assert any(" --facts " in line for line in README)


def _script() -> str:
    script = Path(sys.executable).with_name("recoverkit")
    assert script.is_file(), f"no recoverkit script next to {sys.executable}"
    return str(script)


def _offline_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECOVERKIT_")}
    env.update(
        {
            "HOME": str(home),
            "RECOVERKIT_STRIPE_API_BASE": CLOSED,
            "RECOVERKIT_BRAINTREE_API_BASE_URL": CLOSED,
            "HTTP_PROXY": CLOSED,
            "HTTPS_PROXY": CLOSED,
            "NO_PROXY": "127.0.0.1,localhost",
            "COLUMNS": "200",
        }
    )
    return env


def test_quick_start_runs_as_printed(tmp_path: Path) -> None:
    env = _offline_env(tmp_path)
    outputs = []
    for line in README:
        argv = shlex.split(line)
        assert argv[0] == "recoverkit", line
        result = subprocess.run(
            [_script(), *argv[1:]],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert result.returncode == 0, f"{line}\n{result.stdout}\n{result.stderr}"
        assert "Traceback" not in result.stderr, line
        outputs.append(result.stdout)
    by_command = dict(zip(README, outputs, strict=True))
    offline = next(out for line, out in by_command.items() if "--offline" in line)
    assert '"offline": "invoice.payment_failed"' in offline
    facts = next(out for line, out in by_command.items() if "--facts" in line)
    assert '"endpoint":"payments"' in facts
    assert '"category": "insufficient_funds"' in facts


def test_every_other_runnable_quickstart_example_runs(tmp_path: Path) -> None:
    """The rest of docs/quickstart.md's examples (after the block above), as printed."""
    env = _offline_env(tmp_path)
    others = _runnable_examples(REPO / "docs" / "quickstart.md")
    assert "recoverkit schema --out schemas/" in others
    for line in others:
        if line in QUICKSTART or line == "recoverkit demo":  # run by the test above
            continue
        argv = shlex.split(line)
        result = subprocess.run(
            [_script(), *argv[1:]],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert result.returncode == 0, f"{line}\n{result.stdout}\n{result.stderr}"
