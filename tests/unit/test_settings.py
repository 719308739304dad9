"""Settings come from MIGRATE_* and never show a password."""

from __future__ import annotations

import pytest

from migration.local.services import printable_environment
from migration.settings import Settings


def test_environment_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIGRATE_MYSQL_URL", "mysql+pymysql://app:s3cret@db:3307/shop")
    monkeypatch.setenv("MIGRATE_DYNAMODB_ENDPOINT", "http://localhost:8000")
    monkeypatch.setenv("MIGRATE_AWS_REGION", "eu-west-1")
    monkeypatch.setenv("MIGRATE_TABLE_PREFIX", "staging_")
    monkeypatch.setenv("MIGRATE_CONTRACT", "/tmp/c.yaml")
    settings = Settings()
    assert settings.sqlalchemy_url().port == 3307
    assert settings.dynamodb_endpoint == "http://localhost:8000"
    assert settings.aws_region == "eu-west-1"
    assert settings.table_name("Users") == "staging_Users"
    assert str(settings.contract) == "/tmp/c.yaml"


def test_passwords_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIGRATE_MYSQL_URL", "mysql+pymysql://app:s3cret@db/shop")
    monkeypatch.setenv("MIGRATE_AWS_SECRET_ACCESS_KEY", "awssecret")
    settings = Settings()
    printed, has_password = printable_environment(settings)  # what `services up` prints
    for text in (repr(settings), str(settings), str(settings.safe_dict()),
                 settings.redacted_mysql_url(), str(printed)):
        assert "s3cret" not in text and "awssecret" not in text
    assert has_password and printed["MIGRATE_MYSQL_URL"] == "mysql+pymysql://app@db/shop"
    assert settings.sqlalchemy_url().password == "s3cret"


def test_password_setting_overrides_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIGRATE_MYSQL_URL", "mysql+pymysql://app@db/shop")
    monkeypatch.setenv("MIGRATE_MYSQL_PASSWORD", "pw")
    assert Settings().sqlalchemy_url().password == "pw"
    assert "pw" not in Settings().redacted_mysql_url()


def test_local_endpoint_gets_fixed_credentials() -> None:
    assert Settings(dynamodb_endpoint="http://127.0.0.1:9").aws_credentials() == {
        "aws_access_key_id": "local", "aws_secret_access_key": "local"}
    assert Settings(dynamodb_endpoint="").aws_credentials() == {}
