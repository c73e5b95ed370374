"""The README and docs/ agree with the repository and the CLI.

mkdocs (`mkdocs build --strict` in .ci/run) checks the links between docs pages; the README is not
part of the site, so its links, and the commands its table names, are checked here, in the default
test run, without mkdocs installed.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer

from edgecompress.cli import app

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.rglob("*.md"))
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")  # [text](target)
MAX_README_BYTES = 10 * 1024


def _relative_links(path: Path) -> list[str]:
    """Link targets of a Markdown file that point into the repository (no URL, no bare anchor)."""
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)  # links in code are not links
    return [t for t in LINK.findall(text) if not re.match(r"[a-z]+:|#", t)]


def _bash_blocks(text: str) -> list[str]:
    return [b.strip() for b in re.findall(r"```bash\n(.*?)```", text, flags=re.S)]


def _command_table_rows(text: str) -> list[str]:
    section = text.split("## Commands", 1)[1].split("\n## ", 1)[0]
    return [line for line in section.splitlines() if line.startswith("| `")]


def _cli_tree() -> dict:
    """{command: {subcommand: {...}}} of the visible CLI, as click sees it."""
    def walk(command) -> dict:
        return {name: walk(sub) for name, sub in getattr(command, "commands", {}).items()
                if not sub.hidden}
    return walk(typer.main.get_command(app))


def _named_commands(row: str, top: set[str]) -> list[list[str]]:
    """Command paths a table row names: every `edgecompress a b ...` or `a b ...` span whose
    first word is a command, cut at the first word that is not a lowercase name (a placeholder,
    a flag)."""
    paths = []
    for span in re.findall(r"`([^`]+)`", row):
        words = span.split()
        if words and words[0] == "edgecompress":
            words = words[1:]
        if not words or words[0] not in top:
            continue
        path = [words[0]]
        for word in words[1:]:
            if not re.fullmatch(r"[a-z][a-z-]*", word):
                break
            path.append(word)
        paths.append(path)
    return paths


@pytest.mark.parametrize("path", [README, *PAGES], ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_point_to_existing_files_when_read_from_markdown(path):
    links = _relative_links(path)
    missing = [t for t in links if not (path.parent / t.split("#", 1)[0]).exists()]
    assert not missing, f"{path.relative_to(ROOT)} links to missing files: {missing}"


def test_readme_links_reach_every_docs_page_when_followed_one_level():
    linked = {(README.parent / t.split("#", 1)[0]).resolve() for t in _relative_links(README)}
    reachable = set(linked)
    for page in linked & set(PAGES):
        reachable |= {(page.parent / t.split("#", 1)[0]).resolve() for t in _relative_links(page)}
    unreached = [str(p.relative_to(ROOT)) for p in PAGES if p.resolve() not in reachable]
    assert not unreached, f"docs pages no link from the README leads to: {unreached}"


def test_readme_table_commands_exist_in_the_cli_when_named_with_subcommands():
    tree = _cli_tree()
    rows = _command_table_rows(README.read_text())
    assert rows, "README.md has no commands table under '## Commands'"
    unknown = []
    for row in rows:
        for path in _named_commands(row, set(tree)):
            node = tree
            for word in path:
                if word not in node:
                    if node is tree or node:  # a group without that subcommand
                        unknown.append(" ".join(path))
                    break
                node = node[word]
    assert not unknown, f"README names commands the CLI does not have: {unknown}"


def test_readme_table_has_one_row_per_cli_command_when_compared_with_the_cli():
    rows = _command_table_rows(README.read_text())
    first = [re.match(r"\| `edgecompress ([a-z-]+)", row) for row in rows]
    assert all(first), "every row of the commands table starts with `edgecompress COMMAND`"
    listed = [m.group(1) for m in first]
    assert sorted(listed) == sorted(_cli_tree()), "README's table and the CLI's commands differ"


def test_readme_starts_with_the_demo_and_test_commands_when_read_from_the_top():
    text = README.read_text()
    blocks = _bash_blocks(text)
    assert blocks[0] == ("python3 -m venv .venv && .venv/bin/pip install -q -e . && "
                         ".venv/bin/edgecompress demo --out demo-run")
    assert blocks[1] == ("python3 -m venv .venv && .venv/bin/pip install -q -e '.[test]' && "
                         ".venv/bin/python -m pytest -q")
    assert text.index("```bash") < text.index("\n## "), "the commands come before any section"


def test_ci_runs_the_readme_test_command_verbatim_when_read_from_ci_run():
    test_command = _bash_blocks(README.read_text())[1]
    assert test_command in (ROOT / ".ci" / "run").read_text()


def test_readme_stays_short_when_measured_in_bytes():
    size = len(README.read_bytes())
    assert size <= MAX_README_BYTES, f"README.md is {size} bytes; move detail into docs/"


def test_every_docs_page_is_in_the_mkdocs_nav_when_listed():
    nav = (ROOT / "mkdocs.yml").read_text()
    listed = set(re.findall(r":\s*([\w/.-]+\.md)\s*$", nav, flags=re.M))
    pages = {str(p.relative_to(DOCS)) for p in PAGES}
    assert pages == listed, (f"not in nav: {sorted(pages - listed)}; "
                             f"in nav but missing: {sorted(listed - pages)}")


@pytest.mark.parametrize("path", [README, *PAGES], ids=lambda p: str(p.relative_to(ROOT)))
def test_docs_cite_nothing_outside_the_repository_when_read(path):
    text = path.read_text()
    assert "../shared" not in text and "DESIGN.md" not in text
