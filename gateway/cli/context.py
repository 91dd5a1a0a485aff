"""What every ``govgate`` command shares: the context (settings, services, language)
and the group class that turns our errors into one readable line and exit 1."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any, TypeVar

import click

from audit import AuditRecord
from gateway.errors import GovgateError, ValidationError, is_problem
from gateway.i18n import cli_lang, display_width, ljust, message_of, render, t
from gateway.root import Gateway, Seams, build_gateway
from gateway.services import Services, open_services, os_actor
from gateway.settings import Settings, load_settings
from statedoc import read_bounded
from texts import Text, os_reason, where

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class CliContext:
    lang: str
    overrides: dict[str, Any] = field(default_factory=dict)
    _settings: Settings | None = None
    _services: Services | None = None
    _gateway: Gateway | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(os.environ, self.overrides)
        return self._settings

    @property
    def services(self) -> Services:
        """Opened on first use: most commands need the database, ``--help`` does not."""
        if self._services is None:
            self._services = open_services(self.settings, writer="cli", actor=os_actor())
        return self._services

    @property
    def gateway(self) -> Gateway:
        """The whole gateway (catalogue, workflow, identity provider ...) over the
        services, for the commands that act through them; no watcher runs."""
        if self._gateway is None:
            self._gateway = build_gateway(self.services, Seams(watch_policies=False))
        return self._gateway

    def msg(self, key: str, **kwargs: Any) -> str:
        return t(key, self.lang, **kwargs)

    def record(self, event_type: str, reason: str, **extra: Any) -> None:
        """Audit what the operator did at the command line (an export, a query): no
        audit, no result (AuditWriteError)."""
        self.services.audit.append_sync(AuditRecord(
            event_type=event_type, outcome="success", actor_user=os_actor(), reason=reason,
            source_ip="cli", extra={"via": "cli", **extra}))

    def record_change(self, change: str, **detail: Any) -> None:
        """Audit an administrative change made by this command."""
        self.services.record_admin_change(change, detail)

    def close(self) -> None:
        if self._gateway is not None:
            self._gateway.policies.close()
            self._gateway = None
        if self._services is not None:
            self._services.close()
            self._services = None


def _is_ours(exc: BaseException) -> bool:
    """Errors from our packages carry a machine code and an HTTP status."""
    return isinstance(exc, GovgateError) or is_problem(exc)


class GovgateGroup(click.Group):
    """Turns our errors into one readable line (or a list) and exit code 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.exceptions.Exit:
            raise
        except click.ClickException:
            raise
        except Exception as exc:
            if not _is_ours(exc):
                raise
            lang = cli_lang()
            click.echo(t("error", lang, message=render(message_of(exc), lang)), err=True)
            if isinstance(exc, ValidationError):
                for problem in exc.problems:
                    click.echo(f"  - {render(problem, lang)}", err=True)
            ctx.exit(1)


class InputError(click.ClickException):
    """Input a command cannot act on (a missing file, a reversed time range): one line
    in the error style (``错误：`` / ``error:``) on stderr and exit 2, like a usage error,
    so that a script can tell it from a command that ran and failed (exit 1)."""

    exit_code = 2

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(t("error", cli_lang(), message=self.format_message()), err=True)


class CommandError(click.ClickException):
    """A command that cannot go on (exit 1): click's ``Error: ...`` under an English
    locale, as it always was, the CLI's ``错误：...`` under a Chinese one."""

    def show(self, file: IO[Any] | None = None) -> None:
        if cli_lang() == "zh":
            click.echo(t("error", "zh", message=self.format_message()), err=True)
        else:
            super().show(file)


def input_error(key: str, **kwargs: Any) -> InputError:
    """An :class:`InputError` with the message ``key`` of :mod:`gateway.i18n`, in the
    language of the locale."""
    return InputError(t(key, cli_lang(), **kwargs))


pass_cli = click.make_pass_decorator(CliContext)


def write_output(path: str | os.PathLike[str], text: str) -> None:
    """Write a command's ``--output`` file; a missing folder or a refused write is one
    line (the path and why), not a traceback."""
    try:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        raise ValidationError(where(str(path), os_reason(exc))) from None


def read_input(path: str | os.PathLike[str], limit: int) -> bytes:
    """Read a command's input file, at most ``limit`` bytes whatever it is (a pipe or
    a device has no size to check first); a missing or unreadable file, a directory,
    a name too long or a file larger than ``limit`` is one line, not a traceback."""
    try:
        data = read_bounded(path, limit)
    except OSError as exc:
        raise ValidationError(where(str(path), os_reason(exc))) from None
    if data is None:
        raise ValidationError(Text("file.too_large", "{path}: larger than {n} bytes",
                                   path=str(path), n=limit))
    return data


def table(rows: list[tuple[str, ...]]) -> list[str]:
    """``rows`` (the first one the header) as lines of columns two spaces apart,
    aligned in a terminal even when a cell holds Chinese."""
    widths = [max(display_width(r[c]) for r in rows) for c in range(len(rows[0]))]
    return ["  ".join(ljust(v, w) for v, w in zip(r, widths, strict=True)).rstrip()
            for r in rows]


def cli_context(ctx: click.Context) -> CliContext:
    """The CLI context of ``ctx``; a new one (closed with ``ctx``) when a group is
    invoked on its own, as tests and embedders do."""
    found = ctx.find_object(CliContext)
    if found is None:
        found = CliContext(lang=cli_lang())
        ctx.call_on_close(found.close)
    return found
