"""Repository contracts: the README's test command is what CI runs; the package layout holds."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    quickstart = text.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```(?:bash|sh)?\n(.*?)```", quickstart, re.S)
    return [line.strip() for block in blocks for line in block.splitlines()
            if line.strip() and not line.strip().startswith("#")]


def test_quickstart_has_exactly_two_commands():
    commands = _readme_commands()
    assert len(commands) == 2, commands
    assert "gpumarket" in commands[0]
    test = commands[1]
    assert "pytest" in test or "python -m pytest" in (ROOT / test.split()[-1]).read_text()


def test_ci_runs_the_readme_test_command_verbatim():
    test_command = _readme_commands()[1]
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert test_command in ci_lines


def test_pyproject_lists_the_top_level_packages():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = meta["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
    assert packages == ["market", "agents", "scenarios", "analysis"]
    assert meta["project"]["scripts"]["gpumarket"] == "market.cli:main"
    assert {"test", "dev"} <= set(meta["project"]["optional-dependencies"])


# ------------------------------------------------------------------ shipped documentation ---

#: Extensions of the text files that ship (sources, data, scenarios, docs, scripts).
TEXT_SUFFIXES = {".py", ".toml", ".md", ".sh", ".txt", ".cfg", ".yml", ".yaml", ".json"}
SKIP_DIRS = {".git", "__pycache__", ".venv", "venv", "build", "dist", ".pytest_cache",
             ".hypothesis", ".ruff_cache", "node_modules"}
CALIBRATION_DOC = ROOT / "docs" / "calibration.md"


def _shipped_text_files() -> list[Path]:
    """Every text file of the source tree (git's view when there is one, else a walk)."""
    import subprocess

    try:
        listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                                cwd=ROOT, capture_output=True, text=True, check=True).stdout
        paths = [ROOT / line for line in listed.splitlines()]
    except (OSError, subprocess.CalledProcessError):
        paths = [p for p in ROOT.rglob("*") if not SKIP_DIRS & set(p.relative_to(ROOT).parts)]
    return sorted(p for p in paths if p.is_file()
                  and (p.suffix in TEXT_SUFFIXES or p.relative_to(ROOT).as_posix() == ".ci/run"))


def _calibration_sections() -> set[str]:
    """Section numbers of docs/calibration.md: headings `## 2. ...` and `### 2.1 ...`."""
    text = CALIBRATION_DOC.read_text(encoding="utf-8")
    return {m.group(1) for m in re.finditer(r"^#{2,3} (\d+(?:\.\d+)?)\.? ", text, re.M)}


#: A section reference inside a `[CAL ...]` tag: `2.4`, `2.4-2.5`, `2.4 Tier 3`; confidence
#: letters (`H`, `H/M`) and the placeholder `x.y` are not references.
_SECTION = re.compile(r"^(\d+(?:\.\d+)?)(?:\s*-\s*(\d+(?:\.\d+)?))?(?:\s.*)?$")
_CONFIDENCE = re.compile(r"^[HMLDA](?:/[HMLDA])*$")


def _cal_references() -> list[tuple[str, str]]:
    """(file, section) for every section a `[CAL ...]` tag or a `docs/calibration.md section
    N` phrase cites."""
    refs = []
    for path in _shipped_text_files():
        if path.resolve() == Path(__file__).resolve():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        where = path.relative_to(ROOT).as_posix()
        for tag in re.findall(r"\[CAL ([^\]]+)\]", text):
            for part in (p.strip() for p in tag.split(",")):
                if part == "x.y" or _CONFIDENCE.match(part):
                    continue
                m = _SECTION.match(part)
                assert m, f"{where}: [CAL {tag}]: {part!r} is not a section number"
                refs += [(where, s) for s in m.groups() if s]
        for m in re.finditer(r"docs/calibration\.md,? sections? (\d+(?:\.\d+)?)"
                             r"(?:(?: and|,|-) ?(\d+(?:\.\d+)?))?", text):
            refs += [(where, s) for s in m.groups() if s]
    return refs


def test_every_calibration_tag_resolves_to_a_section_of_docs_calibration():
    sections = _calibration_sections()
    refs = _cal_references()
    assert len(refs) >= 50, "the data files cite docs/calibration.md throughout"
    assert len({f for f, _ in refs}) >= 8
    missing = sorted({(f, s) for f, s in refs if s not in sections})
    assert not missing, f"cited sections with no heading in docs/calibration.md: {missing}"


#: Notes that lived outside the repository and must not be cited by a shipped file.
_OUTSIDE_DOCS = re.compile(r"CALIBRATION(?![_\w])|\bDESIGN(?:\.md| section)|\bMESA(?:\.md| section)"
                           r"|STYLE\.md|\.\./shared\b")


def test_no_shipped_file_cites_a_document_missing_from_the_repository():
    here = Path(__file__).resolve()
    names = {p.name for p in _shipped_text_files()}
    problems = []
    for path in _shipped_text_files():
        if path.resolve() == here:
            continue
        where = path.relative_to(ROOT).as_posix()
        text = re.sub(r"https?://\S+", "", path.read_text(encoding="utf-8", errors="replace"))
        for n, line in enumerate(text.splitlines(), 1):
            problems += [f"{where}:{n}: {m.group(0)}" for m in _OUTSIDE_DOCS.finditer(line)]
            for m in re.finditer(r"(?<![\w/.-])((?:[\w.-]+/)*[\w-]+\.md)(?![\w.])", line):
                cited = m.group(1)
                if not (ROOT / cited).is_file() and cited not in names:
                    problems.append(f"{where}:{n}: {cited} is not in the repository")
    assert not problems, "\n".join(problems)


def test_shipped_docs_exist_and_the_readme_points_to_them():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for doc in ("docs/model.md", "docs/calibration.md"):
        assert (ROOT / doc).is_file(), doc
        assert doc in readme, f"the README does not point to {doc}"
