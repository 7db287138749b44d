from pathlib import Path

import pytest

from rendercost.settings import Settings


def test_env_and_toml_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "rendercost.toml"
    config.write_text('device_type = "l4"\nmax_n = 4\n[speed]\ncompile = true\n')
    monkeypatch.setenv("RENDERCOST_CONFIG", str(config))
    monkeypatch.setenv("RENDERCOST_MAX_N", "6")
    settings = Settings(data_dir=tmp_path)
    assert settings.device_type == "l4"  # from TOML
    assert settings.max_n == 6  # env beats TOML
    assert settings.speed.compile is True
    assert settings.resolved_database_url == f"sqlite:///{tmp_path / 'rendercost.db'}"


def test_missing_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        Settings(config=tmp_path / "absent.toml")


def test_nested_env_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RENDERCOST_SPEED__VAE_TILING", "false")
    assert Settings(data_dir=tmp_path).speed.vae_tiling is False
