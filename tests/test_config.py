import json
import subprocess
import sys

import pytest

from rayapp.config import ConfigError, load_settings, masked


def test_defaults_compose_and_validate():
    s = load_settings([])
    assert s.storage.backend == "local"
    assert s.sources.mode == "live"
    assert s.symbols == ["BTCUSDT"]
    assert s.model.sentiment.name == "ElKulako/cryptobert"
    assert s.model.sentiment.max_length == 128
    assert set(s.tune.space) >= {
        "max_depth",
        "learning_rate",
        "n_estimators",
        "subsample",
        "colsample_bytree",
        "min_child_weight",
        "reg_lambda",
    }


def test_overrides_and_groups():
    s = load_settings(["storage=minio", "sources=replay", "replay.port=9999", "model.seed=7", "storage.bucket=b1"])
    assert s.storage.backend == "minio" and s.storage.bucket == "b1"
    assert s.sources.mode == "replay"
    assert s.sources.binance_url == "http://127.0.0.1:9999"
    assert s.model.seed == 7


def test_environment_urls(monkeypatch):
    monkeypatch.setenv("RAYAPP_DATABASE_URL", "postgresql://u:pw@db.example:5432/x")
    monkeypatch.setenv("RAYAPP_REDIS_URL", "redis://cache:6379/0")
    monkeypatch.setenv("RAYAPP_MLFLOW_URI", "http://mlflow:5000")
    monkeypatch.setenv("RAYAPP_S3_SECRET_KEY", "s3cr3t")
    s = load_settings(["storage=minio"])
    assert s.database.url == "postgresql://u:pw@db.example:5432/x"
    assert s.redis.url == "redis://cache:6379/0"
    assert s.mlflow_tracking_uri == "http://mlflow:5000"
    assert s.storage.secret_key == "s3cr3t"


@pytest.mark.parametrize(
    ("override", "key", "reason"),
    [
        ("database.pool_max=0", "database.pool_max", "greater than or equal to 1"),
        ("database.url=mysql://x", "database.url", "postgresql://"),
        ("serving.port=70000", "serving.port", "less than or equal to 65535"),
        ("features.set=huge", "features.set", "'core' or 'extended'"),
        ("tune.num_samples=abc", "tune.num_samples", "valid integer"),
    ],
)
def test_bad_value_names_key_and_reason(override, key, reason):
    with pytest.raises(ConfigError) as exc:
        load_settings([override])
    assert key in str(exc.value)
    assert reason in str(exc.value)


def test_unknown_key_is_an_error():
    with pytest.raises(ConfigError, match="Could not override 'nonsense'"):
        load_settings(["nonsense=1"])
    with pytest.raises(ConfigError, match="key=value"):
        load_settings(["storage"])


def test_masking_hides_secrets_and_url_passwords():
    data = {
        "database": {"url": "postgresql://u:hunter2@h/db"},
        "storage": {"secret_key": "abc"},
        "serving": {"api_key": "k"},
        "plain": "postgresql://u:@h/db",
    }
    m = masked(data)
    assert m["database"]["url"] == "postgresql://u:***@h/db"
    assert m["storage"]["secret_key"] == "***"
    assert m["serving"]["api_key"] == "***"
    assert m["plain"] == "postgresql://u:@h/db"


@pytest.mark.integration  # `rayapp` subprocesses
def test_cli_config_show_masks_and_fails_clearly(tmp_path):
    env_cmd = [
        sys.executable,
        "-m",
        "rayapp.cli",
        "config",
        "show",
        "--json",
        "storage=minio",
        "storage.secret_key=topsecret",
        "database.url=postgresql://a:pw@h/d",
    ]
    res = subprocess.run(env_cmd, capture_output=True, text=True, cwd=tmp_path, check=True)
    shown = json.loads(res.stdout)
    assert shown["storage"]["secret_key"] == "***"
    assert shown["database"]["url"] == "postgresql://a:***@h/d"
    assert "topsecret" not in res.stdout and "pw@" not in res.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "rayapp.cli", "config", "show", "redis.port=-1"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert bad.returncode == 2
    assert "redis.port" in bad.stderr and "greater than or equal to 0" in bad.stderr
