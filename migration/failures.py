"""What a user sees when a command fails: one line on standard error saying what is wrong
and what to do, exit status 2 (130 when interrupted), and no stack trace unless asked for
with `--debug` or `MIGRATE_DEBUG=1`.

Both console scripts (`migrate` and `reconcile`) build their commands from the classes
here, so the translation of an exception into that line lives in `explain` alone: a MySQL
connection refused or unanswered, a URL that does not parse, a missing DynamoDB table or
missing AWS credentials each get a sentence naming the setting or the command that fixes
it; any other project error its own message; anything else its type and message. No
credential survives into the line.
"""

from __future__ import annotations

import os
import re
import traceback
from collections.abc import Callable
from typing import Any

import botocore.exceptions
import click
import pydantic
import sqlalchemy.exc
from pydantic import SecretStr
from sqlalchemy.engine import URL

from migration.errors import DynamoDBUnavailable, MigrateError, NoCredentials, TableNotFound
from migration.settings import Settings
from migration.source.mysql import connection_failure

DEBUG_ENV = "MIGRATE_DEBUG"
# ctx.meta keys: whether --debug was given, and how to get the command's settings.
_DEBUG = "migration.failures.debug"
_SETTINGS = "migration.failures.settings"

EXIT_FAILED = 2
EXIT_INTERRUPTED = 130


def explain(err: BaseException, settings: Settings | None = None) -> str:
    """`err` as one line for a person: what is wrong and what to do, credentials masked.
    `settings` (those of the failed command, when known) name the URL and endpoint."""
    return mask(" ".join(_sentence(err, settings).split()), settings)


def _sentence(err: BaseException, settings: Settings | None) -> str:
    if isinstance(err, pydantic.ValidationError):
        return _invalid_settings(err)
    url = _url(settings)
    if url is not None and isinstance(err, sqlalchemy.exc.DBAPIError | _pymysql_error()):
        failure = connection_failure(err, url)
        if failure is not None:
            return str(failure)
    if isinstance(err, NoCredentials | botocore.exceptions.NoCredentialsError):
        return ("MIGRATE_DYNAMODB_ENDPOINT is unset, so AWS is meant, and no AWS credentials "
                "were found: set MIGRATE_DYNAMODB_ENDPOINT to a DynamoDB endpoint (`migrate "
                "services up` starts DynamoDB Local and prints it), or give AWS credentials "
                "(MIGRATE_AWS_ACCESS_KEY_ID and MIGRATE_AWS_SECRET_ACCESS_KEY, or boto3's own: "
                "AWS_PROFILE, ~/.aws/credentials)")
    endpoint = (settings.dynamodb_endpoint if settings is not None else "") or "AWS"
    if isinstance(err, TableNotFound):
        table = f"the DynamoDB table {err.table}" if err.table else \
            "a DynamoDB table the contract names"
        prefix = f" with MIGRATE_TABLE_PREFIX={settings.table_prefix!r}" \
            if settings is not None and settings.table_prefix else ""
        return (f"{table} does not exist at {endpoint} ({err}): create the contract's tables "
                f"with `migrate schema apply`{prefix}")
    if isinstance(err, DynamoDBUnavailable) and err.code in _UNREACHABLE:
        return (f"cannot reach DynamoDB at {endpoint} ({err}): check MIGRATE_DYNAMODB_ENDPOINT, "
                "or start DynamoDB Local with `migrate services up`")
    if isinstance(err, MigrateError):
        return str(err)
    if isinstance(err, sqlalchemy.exc.SQLAlchemyError):
        orig = getattr(err, "orig", None)  # SQLAlchemy wraps the driver's error
        cause = orig if isinstance(orig, BaseException) else err
        shown = settings.redacted_mysql_url() if settings is not None else "MIGRATE_MYSQL_URL"
        return f"{type(cause).__name__}: {cause} (MySQL {shown})"
    return f"{type(err).__name__}: {err}"


_UNREACHABLE = {"EndpointConnectionError", "ConnectTimeoutError", "ConnectionClosedError"}


def _pymysql_error() -> type[BaseException]:
    import pymysql

    return pymysql.err.MySQLError


def _url(settings: Settings | None) -> URL | None:
    if settings is None:
        return None
    try:
        return settings.sqlalchemy_url()
    except MigrateError:
        return None


def _invalid_settings(err: pydantic.ValidationError) -> str:
    problems = []
    for error in err.errors():
        names = "__".join(str(part) for part in error.get("loc", ())).upper()
        problems.append(f"MIGRATE_{names}: {error.get('msg', 'invalid')}" if names
                        else str(error.get("msg", "invalid")))
    return "invalid setting " + "; ".join(problems) + " (fix the environment variable)"


def mask(text: str, settings: Settings | None) -> str:
    """`text` without any secret of `settings`, and without the password of any URL in it."""
    secrets: list[Any] = []
    if settings is not None:
        secrets += [settings.mysql_password, settings.aws_secret_access_key]
        url = _url(settings)
        if url is not None:
            secrets.append(url.password)
        else:  # a URL that does not parse: whatever stands where its password would
            found = re.search(r"://[^:/@\s]*:(\S+)@", settings.mysql_url.get_secret_value())
            secrets.append(found.group(1) if found else None)
    for secret in secrets:
        value = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
        if value:
            text = text.replace(str(value), "***")
    # scheme://user:password@host → scheme://user:***@host, whatever printed the URL.
    return _URL_PASSWORD.sub(lambda m: m.group(0) if m.group(2) in _SHOWN else
                             f"{m.group(1)}:***@", text)


_URL_PASSWORD = re.compile(r"(://[^:/@\s]*):([^@\s]+)@")
_SHOWN = {"***", "PASSWORD"}  # already masked, or the placeholder of a hint


# -- the click side -------------------------------------------------------------------------

def remember_settings(ctx: click.Context, settings: Callable[[], Settings]) -> None:
    """Tell the failure report how to get the command's settings (called only on failure,
    so settings that cannot even be read are reported, not raised again)."""
    ctx.meta[_SETTINGS] = settings


def debug_option(function: Any) -> Any:
    """The `--debug` flag (or MIGRATE_DEBUG=1): a failure shows its stack trace too."""

    def remember(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
        ctx.meta[_DEBUG] = value
        return value

    return click.option("--debug", is_flag=True, envvar=DEBUG_ENV, expose_value=False,
                        is_eager=True, callback=remember,
                        help=f"On failure, show the stack trace too (also {DEBUG_ENV}=1).")(function)


class ReportsFailures(click.Command):
    """A click command that answers any failure of its run with one line on standard error
    and exit status 2 (Ctrl-C or SIGTERM: 130); click's own usage errors stay as they are."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except KeyboardInterrupt:
            click.echo(f"error: {_name(ctx)} interrupted", err=True)
            ctx.exit(EXIT_INTERRUPTED)
        except Exception as err:  # noqa: BLE001 - every failure of a run is reported the same way
            if ctx.meta.get(_DEBUG) or os.environ.get(DEBUG_ENV, "") not in ("", "0", "false"):
                click.echo("".join(traceback.format_exception(err)).rstrip(), err=True)
            click.echo(f"error: {_name(ctx)} failed: {explain(err, _settings(ctx))}", err=True)
            ctx.exit(EXIT_FAILED)


class Command(ReportsFailures):
    """A leaf command that reports its failures (see `ReportsFailures`)."""


class Group(ReportsFailures, click.Group):
    """A group whose subcommands and subgroups report their failures the same way."""

    command_class = Command
    group_class = type  # subgroups are of this class too


def _name(ctx: click.Context) -> str:
    """The command as typed, without the program: `flags show`, or `reconcile` alone."""
    words = ctx.command_path.split()
    return " ".join(words[1:]) or ctx.command_path


def _settings(ctx: click.Context) -> Settings | None:
    provider = ctx.meta.get(_SETTINGS)
    if provider is None:
        return None
    try:
        settings = provider()
    except Exception:  # noqa: BLE001 - the failure being reported may be these very settings
        return None
    return settings if isinstance(settings, Settings) else None
