"""One state directory per sources mode (rayapp/flows/state.py): offline history never leaks into
a live model, nor live data into a replay. Files only: no store is started."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rayapp.config import load_settings
from rayapp.errors import InputError
from rayapp.flows.preflight import state_for_mode
from rayapp.flows.state import MARKER, choose_state_dir, data_mode, mark_state, read_marker


def settings_for(state: Path, mode: str, *extra: str):
    return load_settings([f"state_dir={state}", f"sources={mode}", *extra])


def test_a_new_state_directory_is_used_as_given_and_records_its_mode(tmp_path: Path) -> None:
    s = settings_for(tmp_path / "st", "live")
    choice = choose_state_dir(s)
    assert choice.path == tmp_path / "st" and not choice.switched and choice.warning is None
    assert choice.settings.state_dir == s.state_dir  # an explicit state_dir= means exactly that
    mark_state(choice.settings, by="test")
    marker = read_marker(tmp_path / "st")
    assert marker is not None and marker["mode"] == "live" and marker["by"] == "test"
    assert choose_state_dir(s).path == tmp_path / "st"  # the same mode again: the same directory


def test_a_live_run_where_replay_data_is_uses_a_live_directory_of_its_own(tmp_path: Path, capsys) -> None:
    base = tmp_path / "st"
    mark_state(settings_for(base, "replay"), by="rayapp demo")
    live = settings_for(base, "live")
    choice = choose_state_dir(live)
    assert choice.switched and choice.found == "replay" and choice.path == base / "live"
    s = choice.settings
    assert s.state_path == base / "live"
    # everything the embedded stores keep under the state directory moves with it
    assert Path(s.storage.root) == base / "live" / "lake"
    assert s.mlflow_tracking_uri == f"sqlite:///{base / 'live' / 'mlflow' / 'mlflow.db'}"
    assert "holds replay data" in choice.warning and "--reuse-state" in choice.warning

    # as the commands say it (stderr), and the replay directory is left as it was
    got = state_for_mode(live, reuse=False)
    assert got.state_path == base / "live"
    err = capsys.readouterr().err
    assert "warning:" in err and f"uses {base / 'live'} instead" in err
    assert read_marker(base)["mode"] == "replay"

    # the other way round: a replay run where live data is
    mark_state(s, by="rayapp run")
    back = choose_state_dir(settings_for(base / "live", "replay"))
    assert back.switched and back.path == base / "live" / "replay"


def test_reuse_state_mixes_on_purpose_and_says_so(tmp_path: Path) -> None:
    base = tmp_path / "st"
    mark_state(settings_for(base, "replay"), by="test")
    choice = choose_state_dir(settings_for(base, "live"), reuse=True)
    assert not choice.switched and choice.path == base
    assert "uses it anyway (--reuse-state)" in choice.warning and "mixed" in choice.warning
    mark_state(choice.settings, by="test")  # the newest data there is now live
    assert data_mode(choice.settings, base) == "live"


def test_an_explicit_lake_elsewhere_stays_where_it_is(tmp_path: Path) -> None:
    base = tmp_path / "st"
    mark_state(settings_for(base, "replay"), by="test")
    choice = choose_state_dir(settings_for(base, "live", f"storage.root={tmp_path / 'my-lake'}"))
    assert choice.switched and Path(choice.settings.storage.root) == tmp_path / "my-lake"


def test_a_mode_directory_holding_the_other_mode_is_refused(tmp_path: Path) -> None:
    base = tmp_path / "st"
    mark_state(settings_for(base, "replay"), by="test")
    mark_state(settings_for(base / "live", "replay"), by="test")  # someone --reuse-state'd in there
    with pytest.raises(InputError, match="holds replay data too"):
        choose_state_dir(settings_for(base, "live"))


def _bronze(lake: Path, url: str) -> None:
    d = lake / "binance" / "klines" / "dt=2022-07-04"
    d.mkdir(parents=True)
    pq.write_table(pa.table({"url": [url], "status": [200]}), d / "BTCUSDT_20220704T0000_20220705T0000.parquet")


def test_a_directory_from_before_modes_were_recorded_is_judged_by_its_bronze_lake(tmp_path: Path) -> None:
    old = tmp_path / "old-offline"
    _bronze(old / "lake", "http://127.0.0.1:8765/api/v3/klines?symbol=BTCUSDT")
    assert not (old / MARKER).exists()
    choice = choose_state_dir(settings_for(old, "live"))
    assert choice.found == "replay" and choice.switched and choice.path == old / "live"

    public = tmp_path / "old-live"
    _bronze(public / "lake", "https://api.binance.com/api/v3/klines?symbol=BTCUSDT")
    assert choose_state_dir(settings_for(public, "live")).path == public
    assert choose_state_dir(settings_for(public, "replay")).path == public / "replay"


def test_an_unreadable_record_counts_as_none(tmp_path: Path) -> None:
    base = tmp_path / "st"
    base.mkdir()
    (base / MARKER).write_text("{not json")
    assert read_marker(base) is None
    (base / MARKER).write_text(json.dumps({"mode": "moon"}))
    assert read_marker(base) is None
    assert choose_state_dir(settings_for(base, "live")).path == base
