"""Meta-tests: the docs cover the code and stay true to it.

- every hookspec has a page ``docs/hooks/<name>.md`` whose first code block is the hook's exact
  signature, whose example is a valid plugin, and which ``docs/index.md`` links;
- every hookspec has a behavioural test ``test_hook_<name>…`` in ``tests/test_hooks.py``;
- every public name in ``recoverkit.__all__`` is importable, has a docstring and is named in the
  docs;
- every relative link (and ``#anchor``) in ``docs/`` resolves, and every page is reachable from
  ``docs/index.md``;
- the reference pages list exactly what the code holds (money overrides, wire messages, settings,
  CLI commands).
"""

from __future__ import annotations

import ast
import inspect
import os
import re
import subprocess
import sys
import tomllib
import types
from collections.abc import Iterator
from pathlib import Path

import pytest
import recoverkit_adyen  # noqa: F401  # declares Adyen's currency exponents (docs/money.md)
import recoverkit_stripe  # noqa: F401  # declares Stripe's currency exponents (docs/money.md)
import typer

import recoverkit
from recoverkit import Plugins, hookspecs
from recoverkit.cli import app
from recoverkit.config import Settings
from recoverkit.schema import WIRE_MESSAGES
from recoverkit.schema.money import PSP_EXPONENT_OVERRIDES

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
HOOK_DOCS = DOCS / "hooks"

_TITLE = re.compile(r'^```[\w+-]+ title="([^"]+)"[ \t]*$', re.MULTILINE)
_FENCE = re.compile(r"^```([\w+-]*)[^\n]*\n(.*?)^```[ \t]*$", re.DOTALL | re.MULTILINE)
_LINK = re.compile(r"(?<!!)\[[^\]\n]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_CODE_SPAN = re.compile(r"`[^`\n]+`")
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)


def _hook_names() -> list[str]:
    """Hook names as pluggy sees them once the hookspecs module is added."""
    relay = Plugins(load_entry_points=False).manager.hook
    return sorted(name for name, caller in vars(relay).items() if caller.spec is not None)


HOOKS = _hook_names()


def _pages() -> list[Path]:
    return sorted(DOCS.rglob("*.md"))


def _without_code(text: str) -> str:
    """The markdown with fenced code blocks blanked out (links inside code are not links)."""
    return _FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text)


def _code_blocks(text: str) -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in _FENCE.finditer(text)]


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading: its text
    text = re.sub(r"[^\w\- ]", "", text.lower())
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    anchors: set[str] = set()
    for heading in _HEADING.findall(_without_code(page.read_text(encoding="utf-8"))):
        slug = _slug(heading)
        count = seen.get(slug, 0)
        anchors.add(slug if count == 0 else f"{slug}-{count}")
        seen[slug] = count + 1
    return anchors


def _relative_links(page: Path) -> Iterator[tuple[str, Path, str]]:
    """(link as written, target file, anchor) for every link that is not a URL."""
    for target in _LINK.findall(_without_code(page.read_text(encoding="utf-8"))):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto: …
            continue
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        yield target, resolved, anchor


def _expected_signature(name: str) -> str:
    signature = inspect.signature(getattr(hookspecs, name))
    params = []
    for param in signature.parameters.values():
        # hookspecs.py uses `from __future__ import annotations`: annotations are the source text
        assert isinstance(param.annotation, str), f"{name}({param.name}) has no annotation"
        params.append(f"{param.name}: {param.annotation}")
    assert isinstance(signature.return_annotation, str), f"{name} has no return annotation"
    return f"def {name}({', '.join(params)}) -> {signature.return_annotation}:"


# -- hooks ---------------------------------------------------------------------------------------


def test_the_hookspecs_are_found() -> None:
    declared = [name for name, obj in vars(hookspecs).items() if hasattr(obj, "recoverkit_spec")]
    assert HOOKS, "no hookspecs found: the meta-tests below would check nothing"
    assert sorted(declared) == HOOKS


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_page(hook: str) -> None:
    assert (HOOK_DOCS / f"{hook}.md").is_file(), f"write docs/hooks/{hook}.md"


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_page_starts_with_the_exact_signature(hook: str) -> None:
    blocks = _code_blocks((HOOK_DOCS / f"{hook}.md").read_text(encoding="utf-8"))
    assert blocks, f"docs/hooks/{hook}.md has no code block"
    language, first = blocks[0]
    assert language == "python"
    defs = [line.strip() for line in first.splitlines() if line.strip().startswith("def ")]
    assert defs == [_expected_signature(hook)]


def test_every_hook_page_is_for_an_existing_hook() -> None:
    stale = sorted(p.stem for p in HOOK_DOCS.glob("*.md") if p.stem not in HOOKS)
    assert not stale, f"pages for hooks that do not exist: {stale}"


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_page_is_linked_from_the_index(hook: str) -> None:
    targets = {resolved for _, resolved, _ in _relative_links(DOCS / "index.md")}
    assert (HOOK_DOCS / f"{hook}.md").resolve() in targets


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_page_example_is_a_valid_plugin(hook: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The example is run as a module and registered: pluggy checks its hook and argument names."""
    text = (HOOK_DOCS / f"{hook}.md").read_text(encoding="utf-8")
    examples = [
        code for lang, code in _code_blocks(text) if lang == "python" and "hookimpl" in code
    ]
    assert len(examples) == 1, f"docs/hooks/{hook}.md needs one example plugin"
    module = types.ModuleType(f"recoverkit_docs_example_{hook}")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    exec(compile(examples[0], f"docs/hooks/{hook}.md", "exec"), vars(module))

    registry = Plugins(plugins=[module], load_entry_points=False)

    implemented = [impl.plugin for impl in getattr(registry.manager.hook, hook).get_hookimpls()]
    assert implemented == [module], f"the example does not implement {hook}"


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_behavioural_test(hook: str) -> None:
    tree = ast.parse((REPO / "tests" / "test_hooks.py").read_text(encoding="utf-8"))
    names = [node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)]
    assert any(name.startswith(f"test_hook_{hook}") for name in names), (
        f"add test_hook_{hook}_… to tests/test_hooks.py"
    )


# -- public API ----------------------------------------------------------------------------------


def _documented_names() -> set[str]:
    found: set[str] = set()
    for page in _pages():
        text = page.read_text(encoding="utf-8")
        spans = _CODE_SPAN.findall(_without_code(text)) + [code for _, code in _code_blocks(text)]
        for span in spans:
            found.update(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", span))
    return found


@pytest.mark.parametrize("name", sorted(recoverkit.__all__))
def test_public_name_is_importable_documented_and_has_a_docstring(name: str) -> None:
    obj = getattr(recoverkit, name)  # AttributeError: listed in __all__ but not importable
    if name == "__version__":
        assert isinstance(obj, str)
        return
    assert name in _documented_names(), f"name `{name}` somewhere under docs/"
    if inspect.isclass(obj) or inspect.isfunction(obj):
        assert (vars(obj).get("__doc__") or "").strip(), f"{name} needs its own docstring"


# -- links ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("page", _pages(), ids=lambda p: str(p.relative_to(DOCS)))
def test_relative_links_resolve(page: Path) -> None:
    broken = []
    for target, resolved, anchor in _relative_links(page):
        if not resolved.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
            broken.append(f"{target} (no heading #{anchor})")
    assert not broken, f"{page.relative_to(REPO)}: {broken}"


def test_every_page_is_reachable_from_the_index() -> None:
    seen: set[Path] = set()
    todo = [(DOCS / "index.md").resolve()]
    while todo:
        page = todo.pop()
        if page in seen or page.suffix != ".md" or not page.is_file():
            continue
        seen.add(page)
        todo.extend(resolved for _, resolved, _ in _relative_links(page))
    orphans = sorted(str(p.relative_to(DOCS)) for p in _pages() if p.resolve() not in seen)
    assert not orphans, f"link these pages from docs/index.md (or a page it links): {orphans}"


# -- reference pages match the code --------------------------------------------------------------


def test_money_page_lists_exactly_the_psp_exponent_overrides() -> None:
    rows = re.findall(
        r"^\|\s*`?(\w+)`?\s*\|\s*`?([A-Z]{3})`?\s*\|\s*(\d)\s*\|",
        (DOCS / "money.md").read_text(encoding="utf-8"),
        re.MULTILINE,
    )
    documented = {(psp, code, int(exp)) for psp, code, exp in rows}
    actual = {
        (psp, code, exp)
        for psp, table in PSP_EXPONENT_OVERRIDES.items()
        for code, exp in table.items()
    }
    assert documented == actual


def test_wire_schema_page_names_every_wire_message() -> None:
    names = _documented_names()
    text = (DOCS / "wire-schema.md").read_text(encoding="utf-8")
    for file_name, model in WIRE_MESSAGES.items():
        assert model.__name__ in names, model.__name__
        assert f"{file_name}.schema.json" in text, file_name


@pytest.mark.parametrize(
    "setting",
    ["recover_base_url", "butter_signature_fallback", "butter_clock_skew", "extra_psp_names"],
)
def test_every_recover_api_decision_setting_is_explained_and_exists(setting: str) -> None:
    text = (DOCS / "settings-decisions.md").read_text(encoding="utf-8")
    assert f"## `{setting}`" in text
    assert f"RECOVERKIT_{setting.upper()}" in text
    assert setting in Settings.model_fields, f"recoverkit.config.Settings has no {setting}"


#: The pages this suite owns; other pages may describe commands that are still being written.
CLI_PAGES = ("index.md", "concepts.md", "quickstart.md", "writing-a-plugin.md", "wire-schema.md")
_COMMAND = re.compile(r"^(?:\$ )?recoverkit ([a-z][a-z-]*)")


def test_cli_commands_named_in_the_docs_exist() -> None:
    group = typer.main.get_group(app)
    mentioned: set[str] = set()
    for name in CLI_PAGES:
        text = (DOCS / name).read_text(encoding="utf-8")
        lines = [span.strip("`") for span in _CODE_SPAN.findall(_without_code(text))]
        lines += [line.strip() for _, code in _code_blocks(text) for line in code.splitlines()]
        for line in lines:
            mentioned.update(_COMMAND.findall(line))
    assert {"demo", "plugins", "translate", "schema"} <= mentioned
    unknown = sorted(mentioned - set(group.commands))
    assert not unknown, f"docs name CLI commands that do not exist: {unknown}"


# -- the plugin in writing-a-plugin.md works --------------------------------------------------


def test_writing_a_plugin_example_passes_the_conformance_kit(tmp_path: Path) -> None:
    """Every ``title="path"`` block of the guide is written out; its conformance tests must pass."""
    text = (DOCS / "writing-a-plugin.md").read_text(encoding="utf-8")
    written = []
    for match in _FENCE.finditer(text):
        title = _TITLE.match(match.group(0))
        if title is None:
            continue
        target = tmp_path / title.group(1)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(match.group(2), encoding="utf-8")
        written.append(title.group(1))
    assert "pyproject.toml" in written
    assert any(name.startswith("tests/test_") for name in written)

    project = tomllib.loads((tmp_path / "pyproject.toml").read_text(encoding="utf-8"))
    entry_points = project["project"]["entry-points"]["recoverkit"]
    for module in entry_points.values():
        assert (tmp_path / "src" / (module.replace(".", "/") + ".py")).is_file(), module

    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error", "tests"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(tmp_path / "src")},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    passed = re.search(r"(\d+) passed", result.stdout)
    assert passed is not None, result.stdout[-500:]
    assert int(passed.group(1)) >= 10, "the kit ran fewer tests than it should"


# -- the docs site (mkdocs.yml) ------------------------------------------------------------------


def _nav_pages(entries: object) -> Iterator[str]:
    if isinstance(entries, str):
        yield entries
    elif isinstance(entries, list):
        for entry in entries:
            yield from _nav_pages(entry)
    elif isinstance(entries, dict):
        for value in entries.values():
            yield from _nav_pages(value)


def test_mkdocs_nav_lists_existing_pages_and_the_api_reference() -> None:
    yaml = pytest.importorskip("yaml", reason="PyYAML comes with mkdocs (the dev extra)")
    config = yaml.safe_load((REPO / "mkdocs.yml").read_text(encoding="utf-8"))
    assert config["docs_dir"] == "docs"
    assert config["theme"]["name"] == "material"
    pages = list(_nav_pages(config["nav"]))
    missing = [page for page in pages if not (DOCS / page).is_file()]
    assert not missing, f"mkdocs.yml nav names pages that do not exist: {missing}"
    assert "index.md" in pages
    assert "reference.md" in pages
    reference = (DOCS / "reference.md").read_text(encoding="utf-8")
    assert "::: recoverkit.facts" in reference
