"""The CLI's input files as a stranger gives them: an empty name, a name longer than
the file system takes, a file that cannot be read (``/proc/self/mem``: an I/O error)
and a file that never ends (``/dev/zero``, as a pipe or a device may be). Each is one
readable line and a non-zero exit, in a few seconds, with nothing written; before
2026-12-05 (fourth session) they were Python tracebacks or a command that read for
ever. Linux paths (``/dev/zero``, ``/proc``), as CI runs. And the settings every command
reads: a float setting of ``nan`` or ``inf``, an integer one given a TOML float."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from gateway.cli.main import cli
from gateway.settings import Settings
from gateway.statefile import export_state
from tests.hostile.conftest import IdpWorld

LONG_NAME = "y" * 300  # NAME_MAX is 255 on Linux's file systems: ENAMETOOLONG


def run(world: IdpWorld, *args: str) -> Result:
    settings = world.services.settings
    return CliRunner().invoke(cli, list(args), env={
        "GOVGATE_HOME": str(settings.home), "GOVGATE_DATABASE_URL": settings.database_url,
        "LANG": "C.UTF-8"})


def assert_one_line(result: Result, code: int, *says: str) -> None:
    assert result.exit_code == code, (result.exit_code, result.output, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        repr(result.exception)  # a message, not a traceback
    assert "Traceback" not in result.output
    for text in says:
        assert text in result.output, (text, result.output)


@pytest.mark.parametrize("command", [
    ["apply", "-f"], ["apply", "--dry-run", "-f"], ["catalogue", "import"],
    ["client", "add", "c-endless", "--name", "n", "-d", "jgswj", "--grant-type",
     "client_credentials", "--jwks-file"],
])
def test_a_file_without_end_is_refused_once_past_the_limit(
        idp_world: IdpWorld, command: list[str]) -> None:
    before = export_state(idp_world.services.engine)
    started = time.monotonic()
    result = run(idp_world, *command, "/dev/zero")
    assert_one_line(result, 1, "/dev/zero: larger than")
    assert time.monotonic() - started < 10
    assert export_state(idp_world.services.engine) == before


@pytest.mark.parametrize("command", [["apply", "-f"], ["catalogue", "import"]])
def test_a_file_that_fails_to_read_is_the_systems_reason(
        idp_world: IdpWorld, command: list[str]) -> None:
    assert_one_line(run(idp_world, *command, "/proc/self/mem"), 1,
                    "/proc/self/mem: Input/output error")


def test_an_empty_file_name_is_no_such_file(idp_world: IdpWorld) -> None:
    # Path("") is the current directory: it was read as a file (IsADirectoryError)
    assert_one_line(run(idp_world, "apply", "-f", ""), 1, "No such file or directory")


def test_a_name_too_long_is_no_such_file(idp_world: IdpWorld) -> None:
    assert_one_line(run(idp_world, "calendar", "import", LONG_NAME), 2, "no such file")
    assert_one_line(run(idp_world, "apply", "-f", LONG_NAME), 1, "File name too long")


def test_a_new_master_key_file_named_too_long_changes_nothing(idp_world: IdpWorld) -> None:
    home = idp_world.services.settings.home
    files = sorted(p.name for p in home.iterdir())
    result = run(idp_world, "keys", "rotate-master", "--new-file", str(home / LONG_NAME))
    assert_one_line(result, 2, "File name too long")
    assert sorted(p.name for p in home.iterdir()) == files
    assert_one_line(run(idp_world, "keys", "list"), 0)  # the data keys still open


#: every float setting: a duration, a delay or a rate, none of them NaN or infinite
FLOAT_SETTINGS = [f.name for f in dataclasses.fields(Settings) if f.type in ("float", float)]


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e400"])
def test_a_float_setting_that_is_no_number_is_refused(idp_world: IdpWorld, value: str) -> None:
    # "nan" and "inf" read as floats and passed the "not negative" check; a NaN then
    # compares false with every bound (the compliance check read the login delay as off)
    assert len(FLOAT_SETTINGS) >= 10
    settings = idp_world.services.settings
    for name in FLOAT_SETTINGS:
        result = CliRunner().invoke(cli, ["user", "list"], env={
            "GOVGATE_HOME": str(settings.home), "GOVGATE_DATABASE_URL": settings.database_url,
            "LANG": "C.UTF-8", f"GOVGATE_{name.upper()}": value})
        assert_one_line(result, 1, f"setting {name!r}")


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "5.7"])
def test_an_integer_setting_given_a_toml_float_is_refused(tmp_path: Path, value: str) -> None:
    # TOML's inf reached int(): OverflowError, a traceback; 5.7 was cut to 5
    (tmp_path / "govgate.toml").write_text(f"port = {value}\nlockout_threshold = 5\n")
    result = CliRunner().invoke(cli, ["--home", str(tmp_path), "user", "list"],
                                env={"LANG": "C.UTF-8", "GOVGATE_DATABASE_URL": ""})
    assert_one_line(result, 1, "setting 'port': bad value")
