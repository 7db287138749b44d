"""Settings fail loudly on names no setting has, read .env and a secrets folder, and explain themselves."""

from pathlib import Path

import pytest

from rendercost.cli.setting_origins import explain
from rendercost.settings import Settings, UnknownSetting


@pytest.fixture(autouse=True)
def _no_ambient_sources(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Neither the working directory's .env nor the machine's /run/secrets may leak into these tests."""
    monkeypatch.setenv("RENDERCOST_ENV_FILE", str(tmp_path / "absent.env"))
    monkeypatch.setenv("RENDERCOST_SECRETS_DIR", str(tmp_path / "absent-secrets"))


def test_a_misspelt_variable_names_the_closest_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RENDERCOST_DATABSE_URL", "postgresql://db/rendercost")
    with pytest.raises(UnknownSetting) as raised:
        Settings()
    assert "RENDERCOST_DATABSE_URL" in raised.value.message
    assert "did you mean RENDERCOST_DATABASE_URL?" in raised.value.message


def test_a_misspelt_nested_variable_names_the_nested_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RENDERCOST_SPEED__COMPIL", "true")
    with pytest.raises(UnknownSetting, match="did you mean RENDERCOST_SPEED__COMPILE"):
        Settings()


def test_model_names_under_models_are_free_but_their_fields_are_not(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("RENDERCOST_MODELS__MINE__SOURCE", str(tmp_path))
    assert Settings().models["mine"].source == str(tmp_path)
    monkeypatch.setenv("RENDERCOST_MODELS__MINE__DTYPES", "float16")
    with pytest.raises(UnknownSetting, match="did you mean RENDERCOST_MODELS__MINE__DTYPE"):
        Settings()


def test_a_name_far_from_every_setting_points_to_config_show(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RENDERCOST_ZZZZZZZZ", "1")
    with pytest.raises(UnknownSetting, match="rendercost config show lists every setting"):
        Settings()


def test_unknown_toml_keys_stop_start_up_at_any_depth(tmp_path: Path) -> None:
    config = tmp_path / "rendercost.toml"
    config.write_text("[speed]\ncompil = true\n")
    with pytest.raises(UnknownSetting, match=r"speed\.compil .*did you mean speed\.compile\?"):
        Settings(config=config)
    config.write_text('[[llm_providers]]\nname = "a"\nkind = "openai"\nmodle = "m"\n')
    with pytest.raises(UnknownSetting, match=r"did you mean llm_providers\[\]\.model\?"):
        Settings(config=config)
    config.write_text('databse_url = "sqlite://"\n')
    with pytest.raises(UnknownSetting, match="did you mean database_url"):
        Settings(config=config)


def test_dotenv_is_read_below_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("OTHER_TOOL_SETTING=1\nRENDERCOST_MAX_N=5\nRENDERCOST_REGION=eu-west-1\n")
    monkeypatch.setenv("RENDERCOST_ENV_FILE", str(env_file))
    monkeypatch.setenv("RENDERCOST_REGION", "us-west-2")
    settings = Settings()
    assert settings.max_n == 5  # from .env (other tools' names there are not ours to judge)
    assert settings.region == "us-west-2"  # the environment beats .env
    env_file.write_text("RENDERCOST_MAX_M=5\n")
    expected = r"RENDERCOST_MAX_M \(in .*\.env\); did you mean RENDERCOST_MAX_N"
    with pytest.raises(UnknownSetting, match=expected):
        Settings()


def test_secrets_folder_is_a_source_and_explain_masks_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "rendercost_database_url").write_text("postgresql://app:hunter2@db:5432/rendercost\n")
    (secrets / "some_other_apps_secret").write_text("not ours\n")
    monkeypatch.setenv("RENDERCOST_SECRETS_DIR", str(secrets))
    assert Settings().database_url == "postgresql://app:hunter2@db:5432/rendercost"
    rows = {row.name: row for row in explain()}
    assert rows["database_url"].origin == "secrets"
    assert rows["database_url"].value == "****"
    (secrets / "rendercost_webhok_secret").write_text("x")
    with pytest.raises(UnknownSetting, match="did you mean RENDERCOST_WEBHOOK_SECRET"):
        Settings()


def test_explain_names_every_origin(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "rendercost.toml"
    config.write_text('region = "eu-central-1"\n[speed]\ncompile = true\n')
    env_file = tmp_path / ".env"
    env_file.write_text("RENDERCOST_MAX_N=5\n")
    monkeypatch.setenv("RENDERCOST_ENV_FILE", str(env_file))
    monkeypatch.setenv("RENDERCOST_CONFIG", str(config))
    monkeypatch.setenv("RENDERCOST_SPEED__SDPA", "false")
    monkeypatch.setenv("RENDERCOST_WEBHOOK_SECRET", "plain-secret")
    monkeypatch.setenv("RENDERCOST_BUDGET_ALERT_WEBHOOK_URL", "https://ops:pw@alerts.example/hook")
    rows = {row.name: row for row in explain(data_dir=tmp_path / "data")}
    assert (rows["region"].origin, rows["region"].value) == ("toml", "eu-central-1")
    assert (rows["speed.compile"].origin, rows["speed.sdpa"].origin) == ("toml", "env")
    assert (rows["max_n"].origin, rows["max_n"].value) == (".env", 5)
    assert (rows["data_dir"].origin, rows["data_dir"].value) == ("flag", str(tmp_path / "data"))
    assert (rows["port"].origin, rows["port"].value) == ("default", 8000)
    assert rows["webhook_secret"].value == "****"
    assert rows["budget_alert_webhook_url"].value == "https://ops:****@alerts.example/hook"
    assert rows["speed.sdpa"].env_name == "RENDERCOST_SPEED__SDPA"


def test_log_level_and_torch_threads_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RENDERCOST_LOG_LEVEL", "debug")
    monkeypatch.setenv("RENDERCOST_TORCH_THREADS", "2")
    settings = Settings()
    assert (settings.log_level, settings.torch_threads) == ("debug", 2)
    monkeypatch.setenv("RENDERCOST_LOG_LEVEL", "loud")
    with pytest.raises(ValueError, match="log_level"):
        Settings()


def test_redis_settings_read_from_the_environment_with_the_password_masked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert Settings().redis_url is None and Settings().rate_limit_fail_open is True  # embedded default
    monkeypatch.setenv("RENDERCOST_REDIS_URL", "redis://:hunter2@cache:6379/0")
    monkeypatch.setenv("RENDERCOST_RATE_LIMIT_FAIL_OPEN", "false")
    settings = Settings()
    assert settings.redis_url == "redis://:hunter2@cache:6379/0" and settings.rate_limit_fail_open is False
    rows = {row.name: row for row in explain()}
    assert "hunter2" not in str(rows["redis_url"].value) and "cache:6379" in str(rows["redis_url"].value)
