"""The documentation against the command it documents.

The command reference (``docs/commands/``) is checked against the Typer app: every command and subcommand
has a page, every option of a command (each of its names and aliases) appears on its page, and every
``--option`` written on a page exists in that command. The README stays short and its links into ``docs/``
resolve; ``mkdocs build --strict`` passes where MkDocs is installed.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer

import vpscli.cli

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
COMMANDS = DOCS / "commands"
README = ROOT / "README.md"
README_MAX_LINES = 150

# Options every command has that its page need not list (Typer's own, and the root's).
IMPLICIT = {"--help", "-h"}
# Options of the root command (`vps --debug segment ...`), documented on docs/commands/index.md.
ROOT_PAGE = COMMANDS / "index.md"

# `--option` as written in prose, tables and code blocks: two dashes, a letter, then letters, digits, dashes.
OPTION_RE = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*)")


def _walk(cmd, path):
    yield path, cmd
    for name, sub in sorted((getattr(cmd, "commands", None) or {}).items()):
        if not getattr(sub, "hidden", False):
            yield from _walk(sub, [*path, name])


def _commands():
    """(path, click command) for every command under `vps`, subcommand groups included; root excluded."""
    root = typer.main.get_command(vpscli.cli.app)
    return [(path, cmd) for path, cmd in _walk(root, []) if path]


def _root():
    return typer.main.get_command(vpscli.cli.app)


def _names(cmd) -> set[str]:
    """Every option name of a command: long and short forms, and the --no-x side of a flag pair."""
    names: set[str] = set()
    for p in cmd.params:
        if p.param_type_name != "option" or getattr(p, "hidden", False):
            continue
        names.update(p.opts)
        names.update(p.secondary_opts)
    return names - IMPLICIT


def _page(path: list[str]) -> Path:
    """docs/commands/<command>.md; a subcommand of a group: docs/commands/<group>-<sub>.md or the group's
    own page when the group documents its subcommands together (docs/commands/<group>.md)."""
    own = COMMANDS / ("-".join(path) + ".md")
    return own if own.exists() or len(path) == 1 else COMMANDS / f"{path[0]}.md"


def _doc_text(path: list[str], cmd) -> str:
    """What documents `path`: its own page; its section of its group's page; for a group sharing one page
    with its subcommands, that page's introduction."""
    text = _page(path).read_text()
    return _group_intro(text) if getattr(cmd, "commands", None) else _sections(text, path)


def _sections(text: str, path: list[str]) -> str:
    """The part of a page that documents `path`: the whole page for a command; for a subcommand on its
    group's page, its own section (from the heading naming `vps <group> <sub>` to the next heading of the
    same or a higher level)."""
    if len(path) == 1:
        return text
    heading = re.compile(r"^(#{2,6}) .*`vps " + re.escape(" ".join(path)) + r"\b", re.M)
    m = heading.search(text)
    if not m:
        return ""
    level = len(m.group(1))
    end = re.compile(r"^#{2," + str(level) + r"} ", re.M).search(text, m.end())
    return text[m.start() : end.start() if end else len(text)]


def _group_intro(text: str) -> str:
    """A group page's text before its first subcommand section (options named there belong to no one)."""
    m = re.search(r"^## ", text, re.M)
    return text[: m.start()] if m else text


def test_every_command_has_a_page():
    missing = [" ".join(p) for p, _ in _commands() if not _page(p).exists()]
    assert not missing, f"commands without a page in docs/commands/: {missing}"
    groups = [p for p, c in _commands() if getattr(c, "commands", None)]
    for g in groups:
        for p, _ in _commands():
            if len(p) == 2 and p[0] == g[0] and not (COMMANDS / "-".join(p)).with_suffix(".md").exists():
                assert _sections(_page(p).read_text(), p), (
                    f"{_page(p)} has no section for `vps {' '.join(p)}`"
                )


@pytest.mark.parametrize("path", [p for p, _ in _commands()], ids=lambda p: " ".join(p))
def test_every_option_is_documented(path):
    cmd = dict((tuple(p), c) for p, c in _commands())[tuple(path)]
    text = _doc_text(path, cmd)
    written = set(OPTION_RE.findall(text)) | set(re.findall(r"(?<![\w-])(-[a-zA-Z])\b", text))
    undocumented = sorted(_names(cmd) - written)
    assert not undocumented, (
        f"{_page(path).name}: options of `vps {' '.join(path)}` not documented: {undocumented}"
    )


# Options a page may name although its command lacks them: other commands' options it refers to, written
# as `vps <other> --option`, are checked against that command instead (below).
def _foreign_mentions(text: str) -> list[tuple[list[str], str]]:
    """(`vps <command> [<sub>]`, --option) for each `vps <cmd> ... --option` inside one backtick span or
    code line, so a page can cite another command's option without it counting as its own."""
    known = {tuple(p) for p, _ in _commands()}
    out = []
    for span in re.findall(r"`([^`\n]+)`", text) + [
        line for block in re.findall(r"```[a-z]*\n(.*?)```", text, re.S) for line in block.splitlines()
    ]:
        m = re.match(r"\s*(?:\$ )?vps (?:--debug )?([a-z-]+)(?: ([a-z-]+))?", span)
        if not m:
            continue
        path = [m.group(1), m.group(2)] if (m.group(1), m.group(2)) in known else [m.group(1)]
        if tuple(path) not in known:
            continue
        for opt in OPTION_RE.findall(span):
            out.append((path, opt))
    return out


@pytest.mark.parametrize("path", [p for p, _ in _commands()], ids=lambda p: " ".join(p))
def test_nothing_documented_that_does_not_exist(path):
    """Every --option on a command's page (or its section of a group page) is an option of that command,
    of the root (`vps --debug`), or — written as `vps <other> … --option` — of the command it names."""
    cmds = {tuple(p): c for p, c in _commands()}
    own = _names(cmds[tuple(path)]) | _names(_root()) | IMPLICIT
    text = _doc_text(path, cmds[tuple(path)])
    cited = _foreign_mentions(text)
    foreign_ok = {opt for p, opt in cited if tuple(p) != tuple(path) and opt in _names(cmds[tuple(p)])}
    root = _names(_root()) | IMPLICIT
    bad_cited = sorted(
        {f"vps {' '.join(p)} {opt}" for p, opt in cited if opt not in _names(cmds[tuple(p)]) | root}
    )
    assert not bad_cited, f"{_page(path).name}: options cited for commands that lack them: {bad_cited}"
    unknown = sorted(set(OPTION_RE.findall(text)) - own - foreign_ok)
    assert not unknown, f"{_page(path).name}: options `vps {' '.join(path)}` does not have: {unknown}"


def test_every_page_cites_real_options():
    """Outside the command pages (guides, reference, README), an option written as `vps <cmd> … --option`
    must exist in that command."""
    cmds = {tuple(p): c for p, c in _commands()}
    root = _names(_root()) | IMPLICIT
    bad = []
    for page in [README, *sorted(DOCS.rglob("*.md"))]:
        for p, opt in _foreign_mentions(page.read_text()):
            if opt not in _names(cmds[tuple(p)]) | root:
                bad.append(f"{page.relative_to(ROOT)}: vps {' '.join(p)} {opt}")
    assert not bad, "options that do not exist: " + "; ".join(bad)


def test_root_options_are_documented():
    text = ROOT_PAGE.read_text()
    missing = sorted(o for o in _names(_root()) if o not in text)
    assert not missing, f"{ROOT_PAGE.name}: options of `vps` itself not documented: {missing}"


def test_every_command_page_lists_exit_codes():
    from vpscli import errors

    for path, _ in _commands():
        text = _page(path).read_text()
        assert "Exit code" in text or "exit code" in text, f"{_page(path).name}: no exit codes"
    index = ROOT_PAGE.read_text()
    for code in (
        errors.EXIT_OK,
        errors.EXIT_ERROR,
        errors.EXIT_USAGE,
        errors.EXIT_PARTIAL,
        errors.EXIT_PARTIAL_INPUT,
        errors.EXIT_INTERRUPTED,
        errors.EXIT_TERMINATED,
    ):
        assert f"`{code}`" in index, f"{ROOT_PAGE.name}: exit code {code} not explained"


def test_no_page_for_a_command_that_does_not_exist():
    known = {"-".join(p) for p, _ in _commands()}
    extra = [f.name for f in COMMANDS.glob("*.md") if f.stem != "index" and f.stem not in known]
    assert not extra, f"pages for commands vps does not have: {extra}"


def test_readme_is_short_and_its_links_resolve():
    text = README.read_text()
    assert len(text.splitlines()) <= README_MAX_LINES
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    local = [link for link in links if not re.match(r"[a-z]+:", link)]
    assert any(link.startswith("docs/") for link in local), "the README links to no page of docs/"
    broken = [link for link in local if not (ROOT / link).exists()]
    assert not broken, f"README links to files that do not exist: {broken}"


def test_every_docs_page_is_in_the_navigation():
    nav = (ROOT / "mkdocs.yml").read_text()
    pages = [str(f.relative_to(DOCS)) for f in DOCS.rglob("*.md")]
    missing = [p for p in pages if p not in nav]
    assert not missing, f"pages missing from mkdocs.yml's nav: {missing}"


def test_mkdocs_build_strict(tmp_path):
    """The site builds with no warning (a broken link or anchor, a page missing from the nav). Not quiet:
    `mkdocs build -q` hides warnings, and strict mode then does not count them."""
    pytest.importorskip("mkdocs")
    r = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "WARNING" not in r.stderr, r.stderr
