"""Time from a fault to the person: the embedded Redis is stopped under the running app, and the
clock runs until RayappRedisDown (high) arrives at the Slack stand-in and at the SMTP stand-in;
then Redis is started again and the clock runs until the resolved notices arrive.

Real processes throughout: the Ray Serve app on embedded PostgreSQL and Redis with a registered
champion (benchmarks/serve_latency.seed_world), background /predict traffic, Prometheus and
Alertmanager (the real binaries) with the repository's configs rendered by `rayapp alerting
render`, the rules' production `for` durations and the production routing times (group_wait 10 s,
group_interval 60 s). Only the scrape and evaluation intervals are scaled (default 5 s; the
production value is 15 s). Each round is compared with what those settings allow at most:
scrape + `for` + evaluation + group_wait for delivery, and scrape + evaluation + group_interval
for the resolution.

    python benchmarks/alerting.py [--interval 5] [--rounds 2] [--production-round]

Last line: {"scrape_interval_s", "evaluation_interval_s", "slack_delivery_s", "email_delivery_s",
"resolved_delivery_s", "bound_delivery_s", "rounds": [...], ...} (medians over the rounds).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.serve_latency import API_KEY, seed_world  # noqa: E402

ALERT = "RayappRedisDown"


def traffic(url: str, stop: threading.Event) -> None:
    import httpx

    with httpx.Client(base_url=url, timeout=10, headers={"X-API-Key": API_KEY}) as c:
        while not stop.is_set():
            with contextlib.suppress(httpx.HTTPError):
                c.post("/predict", json={"symbol": "BTCUSDT", "explain": False})
            stop.wait(0.5)


def one_round(stack: Any, redis: Any, timeout_s: float) -> dict[str, float]:
    from rayapp.testing import wait_until

    wait_until(lambda: not any(a["labels"]["alertname"] == ALERT for a in stack.firing()), timeout_s, interval_s=1)
    t0 = time.time()
    redis.stop()
    slack = wait_until(lambda: stack.slack.find(ALERT, "firing", t0), timeout_s, interval_s=0.2, what="Slack")
    mail = wait_until(lambda: stack.smtp.find(ALERT, "firing", t0), timeout_s, interval_s=0.2, what="e-mail")
    t1 = time.time()
    redis.start()
    resolved = wait_until(lambda: stack.slack.find(ALERT, "resolved", t1), timeout_s, interval_s=0.2, what="resolved")
    resolved_mail = wait_until(lambda: stack.smtp.find(ALERT, "resolved", t1), timeout_s, interval_s=0.2)
    return {
        "slack_delivery_s": round(slack[0].at - t0, 2),
        "email_delivery_s": round(mail[0].at - t0, 2),
        "resolved_delivery_s": round(resolved[0].at - t1, 2),
        "resolved_email_s": round(resolved_mail[0].at - t1, 2),
    }


def run_stack(s: Any, url: str, workdir: Path, interval_s: float, rounds: int, redis: Any) -> dict[str, Any]:
    from urllib.parse import urlsplit

    from rayapp.config import load_settings
    from rayapp.monitoring import parse_duration
    from rayapp.testing.alerting import AlertStack, SlackStandIn, SmtpStandIn

    s = s.model_copy(deep=True)
    s.alerting = load_settings(
        AlertStack.overrides(
            app_target=urlsplit(url).netloc,
            feed_url=f"{url}/alerts/webhook",
            scrape_s=interval_s,
            eval_s=interval_s,
            for_scale=1.0,
            fast_routes=False,
        )
    ).alerting
    slack, smtp = SlackStandIn(), SmtpStandIn()
    stack = AlertStack(s, workdir, slack, smtp)
    try:
        stack.start()
        from rayapp.testing import wait_until

        wait_until(stack.targets_up, 120, interval_s=1, what="Prometheus to scrape the app")
        import yaml

        rules = yaml.safe_load((ROOT / "deploy" / "rules" / "infrastructure.yml").read_text())
        rule = next(r for r in rules["groups"][0]["rules"] if r["alert"] == ALERT)
        for_s = parse_duration(rule["for"])
        t = s.alerting.routes
        results = [one_round(stack, redis, 600) for _ in range(rounds)]
    finally:
        stack.stop()
        slack.close()
        smtp.close()
    med = {k: round(statistics.median(r[k] for r in results), 2) for k in results[0]}
    return {
        "scrape_interval_s": interval_s,
        "evaluation_interval_s": interval_s,
        "rule_for_s": for_s,
        "group_wait_s": t.group_wait_s,
        "group_interval_s": t.group_interval_s,
        **med,
        # what the settings allow at most: the fault just after a scrape, `for`, the evaluation
        # just before the condition held that long, then the group's first wait
        "bound_delivery_s": interval_s + for_s + interval_s + t.group_wait_s,
        "bound_resolved_s": interval_s + interval_s + t.group_interval_s,
        "rounds": results,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--interval", type=float, default=5, help="scrape and evaluation interval (s)")
    ap.add_argument("--rounds", type=int, default=2, help="fault/recovery rounds")
    ap.add_argument("--production-round", action="store_true", help="also one round at the production 15 s intervals")
    args = ap.parse_args()
    from rayapp.testing.alerting import missing_binaries

    why = missing_binaries()
    if why:
        sys.exit(f"alerting benchmark: {why}")
    os.environ.setdefault("RAY_SERVE_LOG_TO_STDERR", "0")
    with tempfile.TemporaryDirectory(prefix="balert", dir="/tmp") as tmp:
        state = Path(tmp)
        s, _ = seed_world(state, "serving.predictor_replicas=1")
        import ray
        from ray import serve

        from rayapp.services.redis import EmbeddedRedis
        from rayapp.serving.deployments import apply_serve_env, run

        redis = EmbeddedRedis(state)
        apply_serve_env(s)
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
        stop = threading.Event()
        try:
            url = run(s)
            feeder = threading.Thread(target=traffic, args=(url, stop), daemon=True)
            feeder.start()
            main_run = run_stack(s, url, state / "scaled", args.interval, args.rounds, redis)
            production = run_stack(s, url, state / "production", 15, 1, redis) if args.production_round else None
        finally:
            stop.set()
            serve.shutdown()
            ray.shutdown()
            from rayapp.config import load_settings
            from rayapp.services import services_down
            from rayapp.warehouse.db import close_pools

            close_pools()
            services_down(load_settings([f"state_dir={state}"]))
    out = {
        **{k: v for k, v in main_run.items() if k != "rounds"},
        "target_s": 60,
        "meets_target": main_run["slack_delivery_s"] < 60 and main_run["email_delivery_s"] < 60,
        "rounds": main_run["rounds"],
        "production_intervals": production,
        "cpus": os.cpu_count(),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
