"""Every `rayapp` subcommand's error path: one `error:` line on stderr and the documented exit code.

Exit codes (rayapp.errors): 1 the work found a problem, 2 bad input, 3 a store is unreachable.
The table below must name every leaf subcommand of the parser, so a new command cannot ship
without its error path being tried here.
"""

from __future__ import annotations

import argparse

import pytest

from rayapp.cli import build_parser, main

DEAD_PG = "database.url=postgresql://nobody@127.0.0.1:1/none"
DEAD_REDIS = "redis.url=redis://127.0.0.1:1/0"
FAST = "database.connect_timeout_s=1"

# subcommand -> (argv after the subcommand, exit code, a fragment of the error line)
CASES: dict[str, tuple[list[str], int, str]] = {
    "config show": (["nosuch.key=1"], 2, "nosuch"),
    "services up": ([DEAD_PG, DEAD_REDIS, FAST], 3, "postgres is unreachable"),
    "services down": (["database.url=mysql://x/y"], 2, "postgresql://"),
    "services status": ([DEAD_PG, DEAD_REDIS], 1, "unhealthy: postgres"),
    "db migrate": ([DEAD_PG, FAST], 3, "PostgreSQL is unreachable"),
    "db stats": ([DEAD_PG, FAST], 3, "PostgreSQL is unreachable"),
    "ingest": (["sources=nasdaq"], 2, "unknown source"),
    "backfill prices": (["/nonexistent/prices.csv"], 2, "no such file"),
    "backfill news": (["/nonexistent/news.csv"], 2, "no such file"),
    "backfill fear-greed": (["/nonexistent/fear.csv"], 2, "no such file"),
    "replay": (["--data", "/nonexistent/history"], 2, "replay cannot start"),
    "score": (["model.sentiment.name=/nonexistent/cryptobert"], 2, "does not exist"),
    "sentiment-eval": (["/nonexistent/labelled.csv"], 2, "labelled.csv"),
    "features": ([], 3, "PostgreSQL is unreachable"),  # env: the dead database below
    "features build": ([DEAD_PG, FAST], 3, "PostgreSQL is unreachable"),
    "features online-check": ([], 1, "is not registered"),  # an empty store: nothing built yet
    "train": (["--data", "/nonexistent/frame.parquet"], 2, "does not exist"),
    "ablate": (["--period", "nosuch"], 2, "unknown period"),
    "backtest": (["--price-csv", "/nonexistent/prices.csv"], 2, "does not exist"),
    "serve": ([DEAD_PG, DEAD_REDIS, FAST], 3, "PostgreSQL is unreachable"),
    "demo": ([DEAD_PG, DEAD_REDIS, FAST], 3, "PostgreSQL is unreachable"),
    "monitor drift": ([], 2, "has no 'champion' alias"),  # a fresh registry: nothing promoted
    "run": (["--detach"], 2, "--detach needs a cluster"),  # no ray.address: a local cluster dies with us
    "schedule status": ([DEAD_PG, FAST], 3, "PostgreSQL is unreachable"),
    "schedule runs": (["--status", "bogus"], 2, "--status must be one of"),
    "schedule trigger": (["nope"], 2, "unknown job 'nope'"),
    "schedule pause": (["nope"], 2, "unknown job 'nope'"),
    "schedule resume": (["refresh", DEAD_PG, FAST], 3, "PostgreSQL is unreachable"),
    "schedule stop": ([], 2, "no cluster to stop"),
    "models history": ([DEAD_PG, FAST], 3, "PostgreSQL is unreachable"),
    "alerting render": (["alerting.deploy_dir=/nonexistent/deploy"], 2, "has no prometheus.yml"),
    "alerting check": (["alerting.email.smarthost=no-port"], 2, "host:port"),
}


def leaf_commands(parser: argparse.ArgumentParser, prefix: str = "") -> set[str]:
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        return {prefix.strip()}
    out: set[str] = set()
    if parser.get_default("handler") is not None:  # e.g. `rayapp features` runs `build`
        out.add(prefix.strip())
    for name, sub in subs[0].choices.items():
        out |= leaf_commands(sub, f"{prefix} {name}")
    return out


def test_every_subcommand_has_an_error_case():
    assert leaf_commands(build_parser()) == set(CASES)


@pytest.mark.integration
@pytest.mark.parametrize("command", sorted(CASES))
def test_error_path(command, db, tmp_path, monkeypatch, capsys):
    args, code, fragment = CASES[command]
    if command == "features":
        monkeypatch.setenv("RAYAPP_DATABASE_URL", DEAD_PG.split("=", 1)[1])  # `features` alone takes no overrides
    if command == "monitor drift":
        args = [*args, f"state_dir={tmp_path}"]  # its own, empty MLflow registry
    capsys.readouterr()
    assert main([*command.split(), *args]) == code
    out, err = capsys.readouterr()
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, err
    assert fragment in errors[0], errors[0]
    assert "Traceback" not in err and "error:" not in out
