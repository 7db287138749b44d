"""`rendercost models list` and `rendercost models build-tiny`."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from rendercost.cli import app


def test_models_list_shows_loadable_and_unloadable_models(tmp_path: Path, tiny_model_dir: Path) -> None:
    config = tmp_path / "rendercost.toml"
    config.write_text(
        f'[models.default]\nsource = "{tiny_model_dir}"\n\n'
        f'[models.broken]\nsource = "{tmp_path / "missing"}"\n'
    )

    result = CliRunner().invoke(
        app,
        ["--config", str(config), "--data-dir", str(tmp_path / "data"), "models", "list"],
        env={"COLUMNS": "300"},
    )

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    [default_line] = [line for line in lines if "│ default" in line]
    [broken_line] = [line for line in lines if "│ broken" in line]
    assert "yes" in default_line
    assert "no" in broken_line and "does not exist" in broken_line


def test_models_list_reports_the_embedded_default(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["--data-dir", str(tmp_path / "data"), "models", "list"], env={"COLUMNS": "300"}
    )

    assert result.exit_code == 0, result.output
    assert "built on first use" in result.output
    assert not (tmp_path / "data" / "models").exists()  # listing builds nothing


def test_build_tiny_writes_a_model_and_refuses_to_overwrite(tmp_path: Path) -> None:
    target = tmp_path / "tiny"

    built = CliRunner().invoke(app, ["models", "build-tiny", str(target)])
    again = CliRunner().invoke(app, ["models", "build-tiny", str(target)])

    assert built.exit_code == 0, built.output
    assert (target / "model_index.json").is_file() and (target / "rendercost.json").is_file()
    assert again.exit_code == 2
    assert "already exists" in again.output
