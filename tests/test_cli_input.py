"""Bad scenario input at the command line: one line per problem, exit code 2, no traceback,
nothing written.

Through click's CliRunner (fast, the real command group and its error handling) and, for a
few cases, the installed `gpumarket` script in a subprocess. Each bad input is given to
`gpumarket validate` and to `gpumarket run --months 1 --out DIR`; afterwards DIR does not
exist and its parent holds nothing new (no temporary siblings).
"""

from __future__ import annotations

import codecs
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from market.cli import cli
from scenarios.loader import MAX_SCENARIO_BYTES, load_scenario

PREFIX = "gpumarket: error: "
SECRET = "hunter2"
GPUMARKET = Path(sys.executable).parent / "gpumarket"
#: Bound on a subprocess [s]; only reached if the command hangs.
SUBPROCESS_TIMEOUT_S = 120
#: Examples per fuzz test (10 tests); GPUMARKET_FUZZ_EXAMPLES=500 for a longer hunt.
FUZZ_EXAMPLES = int(os.environ.get("GPUMARKET_FUZZ_EXAMPLES", "25"))
FUZZ = settings(max_examples=FUZZ_EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


def refused(args: list[str], workdir: Path, *, lines: int | None = 1) -> list[str]:
    """Run `gpumarket validate ARGS` and `gpumarket run ARGS --months 1 --out DIR`; assert each
    is refused cleanly and return the error lines of `run` (the same problems as validate)."""
    out = workdir / "out"
    before = set(os.listdir(workdir))
    errors = []
    for command in (["validate", *args], ["run", *args, "--months", "1", "--out", str(out)]):
        result = CliRunner().invoke(cli, command)
        assert isinstance(result.exception, SystemExit), (command, result.exception)
        assert result.exit_code == 2, (command, result.output)
        text = result.stdout + result.stderr
        assert "Traceback" not in text
        assert result.stdout == ""
        errors = result.stderr.splitlines()
        assert errors and all(e.startswith(PREFIX) for e in errors), errors
        if lines is not None:
            assert len(errors) == lines, errors
        assert not out.exists()
        assert set(os.listdir(workdir)) == before
    return [e.removeprefix(PREFIX) for e in errors]


def _child(directory: Path, extends: str, name: str = "child.toml") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(f'extends = "{extends}"\nname = "child"\n')
    return path


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    """A TOML file that is not a scenario, holding a value that must never be printed."""
    path = tmp_path / "secret.toml"
    path.write_text(f'password = "{SECRET}"\n')
    return path


# ------------------------------------------------------------------- case 1: extends ---

@pytest.mark.parametrize("extends, expected", [
    ("../secret.toml", "leaves the directory of child.toml, refused"),
    ("sub/../../secret.toml", "leaves the directory of child.toml, refused"),
    ("ABSOLUTE", "is an absolute path, refused"),
    ("~/secret.toml", "is an absolute path, refused"),
    ("/etc/passwd", "is neither a built-in scenario name nor a .toml file"),
    ("../notes.txt", "is neither a built-in scenario name nor a .toml file"),
])
def test_extends_cannot_reach_outside_the_scenario_directory(tmp_path, secret, extends, expected):
    extends = str(secret) if extends == "ABSOLUTE" else extends
    child = _child(tmp_path / "scenarios", extends)
    (line,) = refused([str(child)], tmp_path)
    assert line.startswith(f"{child}: field extends: ")
    assert expected in line
    assert "built-in scenario name or a .toml file in the directory of child.toml" in line
    assert SECRET not in line


def test_extends_cannot_leave_through_a_symbolic_link(tmp_path, secret):
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "link.toml").symlink_to(secret)
    child = _child(tmp_path / "scenarios", "link.toml")
    (line,) = refused([str(child)], tmp_path)
    assert "through a symbolic link, refused" in line and SECRET not in line


def test_a_file_that_is_not_a_scenario_is_never_quoted(tmp_path, secret):
    beside = tmp_path / "scenarios" / "secret.toml"
    beside.parent.mkdir()
    beside.write_text(secret.read_text() + 'token = "abc123"\n')
    child = _child(tmp_path / "scenarios", "secret.toml")
    for args in ([str(child)], [str(secret)]):
        (line,) = refused(args, tmp_path)
        assert "not a scenario file: it has none of a scenario's fields" in line
        assert SECRET not in line and "abc123" not in line and "password" not in line


def test_a_file_that_is_not_toml_is_not_read(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text(f"password = {SECRET}\n")
    (line,) = refused([str(notes)], tmp_path)
    assert line == (f"{notes}: not a scenario file: expected a built-in scenario name or a "
                    ".toml file")


def test_extends_a_file_in_its_directory_or_below(tmp_path):
    base = _child(tmp_path / "scenarios" / "variants", "baseline", name="base.toml")
    base.write_text('extends = "baseline"\nname = "base"\n[long_tail]\ncount = 7\n')
    child = _child(tmp_path / "scenarios", "variants/base.toml")
    result = CliRunner().invoke(cli, ["validate", str(child)])
    assert result.exit_code == 0, result.output
    assert "7 long-tail labs" in result.stdout
    assert load_scenario(str(child)).scenario.long_tail.count == 7


def test_extends_by_bare_name_means_a_builtin_with_a_hint_for_the_file(tmp_path):
    _child(tmp_path, "baseline", name="parent.toml")
    child = _child(tmp_path, "parent")
    (line,) = refused([str(child)], tmp_path)
    assert "unknown scenario 'parent'; known: baseline" in line
    assert 'write extends = "parent.toml"' in line


# --------------------------------------------------------- case 2: not UTF-8 text -------

TEXT = 'extends = "baseline"\nname = "encoded"\n'
CONTENTS = {
    "binary garbage": bytes(range(256)) * 4,
    "a PNG image": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64),
    "UTF-16 with BOM": TEXT.encode("utf-16"),
    "UTF-16 big-endian with BOM": codecs.BOM_UTF16_BE + TEXT.encode("utf-16-be"),
    "UTF-16 without BOM": TEXT.encode("utf-16-le"),
    "UTF-32 with BOM": TEXT.encode("utf-32"),
    "a NUL byte": TEXT.replace("\n", "\n\x00", 1).encode(),
    "Latin-1 text": 'extends = "baseline"\nname = "Zürich"\n'.encode("latin-1"),
    "a stray continuation byte": b'extends = "baseline"\nname = "\x80"\n',
}
EXPECTED = {
    "binary garbage": "contains NUL bytes, so it is not text",
    "a PNG image": "contains NUL bytes, so it is not text",
    "UTF-16 with BOM": "is UTF-16 text (it starts with a UTF-16 byte-order mark)",
    "UTF-16 big-endian with BOM": "is UTF-16 text",
    "UTF-16 without BOM": "contains NUL bytes",
    "UTF-32 with BOM": "is UTF-32 text",
    "a NUL byte": "contains NUL bytes",
    "Latin-1 text": "is not UTF-8 text (a byte that is not UTF-8 at line 2, column 10)",
    "a stray continuation byte": "is not UTF-8 text (a byte that is not UTF-8 at line 2, "
                                 "column 9)",
}


@pytest.mark.parametrize("kind", sorted(CONTENTS))
def test_a_file_that_is_not_utf8_text_is_one_line(tmp_path, kind):
    path = tmp_path / "bad.toml"
    path.write_bytes(CONTENTS[kind])
    (line,) = refused([str(path)], tmp_path)
    assert line.startswith(f"{path}: {EXPECTED[kind]}")
    assert line.endswith("expected a UTF-8 TOML scenario file") or "save it as UTF-8" in line


def test_a_utf8_byte_order_mark_is_accepted(tmp_path):
    path = tmp_path / "bom.toml"
    path.write_bytes(codecs.BOM_UTF8 + TEXT.encode())
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exit_code == 0, result.output


def test_a_directory_a_fifo_and_a_huge_file_are_one_line(tmp_path):
    directory = tmp_path / "dir.toml"
    directory.mkdir()
    fifo = tmp_path / "fifo.toml"
    os.mkfifo(fifo)                                   # opening it would wait for a writer
    huge = tmp_path / "huge.toml"
    with huge.open("wb") as fh:                       # sparse: no disk used
        fh.truncate(MAX_SCENARIO_BYTES + 1)
    missing = tmp_path / "missing.toml"
    for path, expected in [(directory, "is a directory; expected a UTF-8 TOML scenario file"),
                           (fifo, "is not a regular file (a pipe, socket or device)"),
                           (huge, "bytes, larger than a scenario file can be"),
                           (missing, "scenario file not found")]:
        (line,) = refused([str(path)], tmp_path)
        assert line.startswith(f"{path}: ") and expected in line


def test_an_unreadable_file_is_one_line(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root reads any file")
    path = tmp_path / "locked.toml"
    path.write_text(TEXT)
    path.chmod(0)
    (line,) = refused([str(path)], tmp_path)
    assert line == f"{path}: cannot read: Permission denied"


# ------------------------------------------- case 3: values the model cannot take -------

@pytest.mark.parametrize("override, expected", [
    ("market.retire_after_years=1.0", "Input should be greater than or equal to 2 (found 1.0): "
                                      "age at which chips retire [yr]"),
    ("market.retire_after_years=0.5", "greater than or equal to 2"),
    ("market.availability=0", "Input should be greater than 0 (found 0): sellable share of "
                              "fleet hours [fraction], above 0: at 0 no hour is offered"),
    ("long_tail.count=1000000", "Input should be less than or equal to 100000 (found 1000000)"
                                ": number of generated smaller labs; at most 100,000: memory"),
])
def test_values_the_model_cannot_take_are_refused_with_the_reason(tmp_path, override,
                                                                  expected):
    (line,) = refused(["baseline", "--set", override], tmp_path)
    field = override.split("=")[0]
    assert line.startswith(f"--set {field}: field {field}: ")
    assert expected in line


def test_a_starting_fleet_older_than_the_retirement_age_is_refused(tmp_path):
    (line,) = refused(["baseline", "--set", "market.retire_after_years=2.5",
                       "--set", "clouds.aws.fleet_age_years=3"], tmp_path)
    assert line.endswith("field clouds.aws.fleet_age_years: a starting fleet aged 3 yr retires "
                         "in the first month at market.retire_after_years = 2.5; it must be "
                         "younger")


_EVENT = ('[[events]]\nkind = "export_control"\ndate = "{date}"\nissuer = "US"\n'
          'rule = "oct2022"\naction = "lift"\n')


def test_an_event_of_a_file_that_extends_is_named_by_its_place_in_that_file(tmp_path):
    n = len(load_scenario("baseline").scenario.events)          # inherited, numbered first
    mine = tmp_path / "mine.toml"
    mine.write_text('extends = "baseline"\nname = "mine"\n\n' + _EVENT.format(date="2025-01")
                    + _EVENT.format(date="2024-1"))
    (line,) = refused([str(mine)], tmp_path)
    assert line == (f"{mine}: field events[1].date of this file (events[{n + 1}] of the merged "
                    "scenario): expected a month YYYY-MM (found '2024-1')")
    mine.write_text('extends = "baseline"\nname = "mine"\n\n' + _EVENT.format(date="2040-01"))
    lines = refused([str(mine)], tmp_path, lines=None)
    assert lines[0] == (f"{mine}: field events[0].date of this file (events[{n}] of the merged "
                        "scenario): date 2040-01 is outside the run (2022-01 to 2030-12)")
    # a --set names events by their merged index, and its message keeps that index
    (line, *_) = refused([str(mine), "--set", f"events.{n}.date=2041-01"], tmp_path, lines=None)
    assert line.startswith(f"--set events.{n}.date: field events[{n}].date: ")


def test_an_unknown_field_lists_the_fields_allowed_where_it_stands(tmp_path):
    from scenarios.schema import Scenario

    top = tmp_path / "top.toml"
    top.write_text('extends = "baseline"\nname = "x"\n\n[markett]\nmfu = 0.3\n')
    (line,) = refused([str(top)], tmp_path)
    allowed = sorted([*Scenario.model_fields, "drop_events"])
    assert line == (f"{top}: field markett: unknown field; did you mean market? known: "
                    f"{', '.join(allowed)}")
    # a long table lists its nearest names, not all ~50 (one line a reader can take in)
    (line,) = refused(["baseline", "--set", "market.serving_elasticty=1.2"], tmp_path)
    assert "did you mean serving_elasticity? nearest known: serving_elasticity, " in line
    assert line.endswith("more (docs/model.md lists them)") and len(line) < 400, line
    (line,) = refused(["baseline", "--set", "events.0.note2=1"], tmp_path)
    assert line == ("--set events.0.note2: field events[0].note2: unknown field (found 1); "
                    "did you mean note? known: action, date, issuer, kind, note, rule")


# ------------------------------------------------------------------- case 4: fuzzing ----

def _leaves(node, prefix=()):
    """(path, value) of every value in the baseline's resolved data, tables included."""
    items = node.items() if isinstance(node, dict) else enumerate(node)
    for key, value in items:
        path = (*prefix, key)
        yield path, value
        if isinstance(value, (dict, list)) and value:
            yield from _leaves(value, path)


BASELINE = load_scenario("baseline").resolved
#: Paths (dotted, list items by index) with the Python type of the value there.
FIELDS = sorted(((".".join(map(str, p)), type(v).__name__) for p, v in _leaves(BASELINE)
                 if p[0] not in ("uncertain", "levers")), key=str)


def _wrong_values(kind: str) -> list[str]:
    """TOML values of a type no field of that kind accepts."""
    table, array = "{ bad = 1, worse = [] }", '[1, "x", {}]'
    return {"str": [table, "nan", array, "2022-01-01"],
            "int": ['"abc"', table, "nan", "inf", "1e400", '"1x"', "[1]", "true"],
            "float": ['"abc"', table, "nan", "-inf", "1e400", '"0.3.4"', "[0.1]"],
            "bool": ['"perhaps"', table, "2", "[true]"],
            "dict": ['"abc"', "5", '["a"]'],
            "list": ['"abc"', "5", table]}[kind]


@st.composite
def wrong_types(draw):
    path, kind = draw(st.sampled_from(FIELDS))
    return path, draw(st.sampled_from(_wrong_values(kind)))


@FUZZ
@given(case=wrong_types())
def test_fuzz_wrong_types_on_real_fields_by_set(tmp_path, case):
    path, value = case
    refused(["baseline", "--set", f"{path}={value}"], tmp_path, lines=None)


@FUZZ
@given(case=wrong_types().filter(lambda c: "." not in c[0].split(".")[-1]
                                 and not any(p.isdigit() for p in c[0].split("."))))
def test_fuzz_wrong_types_on_real_fields_in_a_file(tmp_path, case):
    path, value = case
    keys = ".".join(f'"{k}"' for k in path.split("."))
    scenario = tmp_path / "typo.toml"
    scenario.write_text(f'extends = "baseline"\n{keys} = {value}\n')
    lines = refused([str(scenario)], tmp_path, lines=None)
    assert all(line.startswith(f"{scenario}: ") for line in lines), lines


BAD_SET = st.sampled_from([
    "market.mfu=abc", "nosuch=1", "market.nosuch=1", "=1", "market.=0.3", "market..mfu=0.3",
    ".market.mfu=0.3", "market.mfu", "market.mfu=", "market.mfu=1e999", "market.mfu=nan",
    "market.mfu=-inf", "market.mfu=" + "9" * 5000, "market.mfu=" + "[" * 5000,
    "market.mfu=0.4\nmarket.nosuch = 1", "events.99.date=\"2023-01\"", "events.x.date=1",
    "clouds.aws.fleet.h100-sxm=-5", "long_tail.count=1.5", "long_tail.count=" + "9" * 40,
    "start=\"2022-13\"", "start=2022-01-01", "end=\"2021-12\"", "start=\"22-01\"",
    "events.0.date=\"2040-01\"", "name=\"two\nlines\"", "name=\"\"", "market=5",
    "clouds=[]", "nations.US.controls_group=\"Mars\"", "market.tie_break=\"coin\"",
    "a" * 5000 + "=1", "market.mfu=\x00", "clouds.aws.nation=\"Atlantis\"",
])


@FUZZ
@given(assignments=st.lists(BAD_SET, min_size=1, max_size=3))
def test_fuzz_bad_set_values(tmp_path, assignments):
    args = ["baseline"]
    for a in assignments:
        args += ["--set", a]
    refused(args, tmp_path, lines=None)


#: Characters of TOML's syntax, digits, and a few that TOML or UTF-8 text handle specially.
TOMLISH = st.text(alphabet=st.sampled_from([*'abcdefghijklmnopqrstuvwxyz_.-=[]{}"\',#\n \t',
                                            *'0123456789+eE:TZ\\', "\x00", "é", "\ufeff",
                                            "\x7f", "\r"]),
                  max_size=300)


@FUZZ
@given(text=TOMLISH)
def test_fuzz_random_tomlish_text(tmp_path, text):
    path = tmp_path / "random.toml"
    path.write_text(text, encoding="utf-8")
    refused([str(path)], tmp_path)


@FUZZ
@given(data=st.binary(max_size=400), encoding=st.sampled_from(["utf-16", "utf-32", "cp1252",
                                                              "raw"]))
def test_fuzz_wrong_encodings(tmp_path, data, encoding):
    text = TEXT + "# é\n" + data.decode("latin-1")       # never plain ASCII
    raw = data if encoding == "raw" else text.encode(encoding, errors="replace")
    path = tmp_path / "encoded.toml"
    path.write_bytes(raw)
    refused([str(path)], tmp_path)


MONTH_LIKE = st.one_of(
    st.sampled_from(["2022-13", "2022-00", "22-01", "2022-1", "2022/01", "", "2022-01-01",
                     "١٩٩٩-٠١", "2030-99", "9999-12", "0000-01"]),
    st.from_regex(r"\A\d{0,5}-?\d{0,3}\Z"))


@FUZZ
@given(field=st.sampled_from(["start", "end", "events.0.date", "labs.openai.start",
                              "vendors.nvidia.products.0.available"]), month=MONTH_LIKE,
       quoted=st.booleans())
def test_fuzz_bad_dates(tmp_path, field, month, quoted):
    value = f'"{month}"' if quoted or not month else month
    result = CliRunner().invoke(cli, ["validate", "baseline", "--set", f"{field}={value}"])
    if result.exit_code == 0:       # some fuzzed months are real months inside the run
        return
    refused(["baseline", "--set", f"{field}={value}"], tmp_path, lines=None)


@FUZZ
@given(table=st.sampled_from(["", "market.", "clouds.aws.", "long_tail.", "nations.US.",
                              "leakage.", "vendors.nvidia.products.0."]),
       key=st.from_regex(r"\A[a-z][a-z0-9_]{0,20}\Z"))
def test_fuzz_unknown_fields(tmp_path, table, key):
    path = f"{table}{key}"
    known = {k for k, _ in FIELDS}
    if path in known or key in ("extends", "drop_events"):
        return
    if table.startswith("vendors"):
        (line,) = refused(["baseline", "--set", f"{path}=1"], tmp_path)
        assert "unknown field" in line
        return
    scenario = tmp_path / "unknown.toml"
    keys = ".".join(f'"{k}"' for k in path.split("."))
    scenario.write_text(f'extends = "baseline"\n{keys} = 1\n')
    (line,) = refused([str(scenario)], tmp_path)
    assert f"field {path}: unknown field (found 1)" in line


BASELINE_TEXT = (Path(__file__).parent.parent / "scenarios" / "baseline.toml").read_text()


@st.composite
def mutations(draw):
    """The baseline's text with a few random cuts, insertions and swapped lines."""
    text = BASELINE_TEXT
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(text)))
        match draw(st.sampled_from(["cut", "insert", "swap"])):
            case "cut":
                text = text[:at] + text[at + draw(st.integers(1, 40)):]
            case "insert":
                text = text[:at] + draw(TOMLISH.filter(bool)) + text[at:]
            case "swap":
                lines = text.splitlines(keepends=True)
                i, j = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
                lines[i], lines[j] = lines[j], lines[i]
                text = "".join(lines)
    return text


def accepted_or_refused(args: list[str], workdir: Path) -> None:
    """For inputs that may happen to be valid: validate exits 0, or both commands are
    refused cleanly (exit 2, error lines only, nothing written)."""
    result = CliRunner().invoke(cli, ["validate", *args])
    assert isinstance(result.exception, SystemExit) or result.exception is None, \
        result.exception
    if result.exit_code == 0:
        assert result.stderr == "" and result.stdout.startswith("ok: ")
        ran = CliRunner().invoke(cli, ["run", *args, "--months", "2", "--quiet"])
        assert ran.exception is None or isinstance(ran.exception, SystemExit), ran.exception
        assert ran.exit_code == 0, ran.stderr
        return
    refused(args, workdir, lines=None)


@FUZZ
@given(text=mutations())
def test_fuzz_mutated_baseline_is_valid_or_refused(tmp_path, text):
    path = tmp_path / "mutated.toml"
    path.write_text(text, encoding="utf-8")
    accepted_or_refused([str(path)], tmp_path)


@FUZZ
@given(path=st.text(alphabet=st.sampled_from([*"abcdefgilmnorstuyw_.-0129", "[", "]", " "]),
                    max_size=30),
       value=TOMLISH)
def test_fuzz_random_set_is_valid_or_refused(tmp_path, path, value):
    accepted_or_refused(["baseline", "--set", f"{path}={value}"], tmp_path)


NAME_PARTS = st.sampled_from([*"abcxyz-_./~", "..", ".toml", "/", " ", "\x7f", "é", "\n"])


@FUZZ
@given(name=st.one_of(st.lists(NAME_PARTS, min_size=1, max_size=20).map("".join),
                      st.sampled_from(["a" * 5000, "a/" * 3000 + "x.toml", "/", ".", "..",
                                       "~", "/dev/null", "/dev/zero.toml", "/proc/self/environ",
                                       "/etc/passwd", "-", ".toml", "baseline.toml",
                                       "baseline ", " baseline", "BASELINE", "baseline/"])))
def test_fuzz_scenario_names_and_paths(tmp_path, name):
    (line,) = refused([name], tmp_path)
    assert len(line) < 600


def test_a_bare_name_of_a_file_here_gets_a_hint(tmp_path, monkeypatch):
    (tmp_path / "mine.toml").write_text(TEXT)
    monkeypatch.chdir(tmp_path)
    (line,) = refused(["mine"], tmp_path)
    assert "unknown scenario 'mine'; for the file mine.toml here, name it with its suffix" in line


def test_bad_set_values_each_print_one_line(tmp_path):
    for assignment in ["market.mfu=abc", "nosuch=1", "market.mfu=" + "9" * 5000,
                       "market.mfu=0.4\nmarket.nosuch = 1", "a" * 5000 + "=1",
                       "name=\"two\nlines\"", "start=2022-01-01"]:
        (line,) = refused(["baseline", "--set", assignment], tmp_path)
        assert len(line) < 600


# ---------------------------------------------------------------- real subprocesses ----

@pytest.mark.parametrize("make", ["binary", "extends-escape", "bad-set"])
def test_bad_input_through_the_installed_script(tmp_path, secret, make):
    if make == "binary":
        path = tmp_path / "bad.toml"
        path.write_bytes(CONTENTS["UTF-16 with BOM"])
        args = [str(path)]
    elif make == "extends-escape":
        args = [str(_child(tmp_path / "scenarios", "../secret.toml"))]
    else:
        args = ["baseline", "--set", "market.availability=0"]
    out = tmp_path / "out"
    before = set(os.listdir(tmp_path))
    for command in (["validate", *args], ["run", *args, "--months", "1", "--out", str(out)]):
        done = subprocess.run([str(GPUMARKET), *command], capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=SUBPROCESS_TIMEOUT_S)
        assert done.returncode == 2, done.stderr
        assert done.stdout == "" and "Traceback" not in done.stderr
        (line,) = done.stderr.splitlines()
        assert line.startswith(PREFIX) and SECRET not in line
        assert not out.exists() and set(os.listdir(tmp_path)) == before


def test_the_fuzzed_paths_cover_every_table():
    tops = {p.split(".")[0] for p, _ in FIELDS}
    assert {"nations", "foundries", "vendors", "clouds", "labs", "long_tail", "market",
            "leakage", "events", "start", "end", "name"} <= tops
    assert len(FIELDS) > 500
