"""What every component is handed: the configuration, the agent's log and its
metrics. The agent owns the only instance."""

from __future__ import annotations

from logtrain.config import Config
from logtrain.log import Log, RateLimit
from logtrain.metrics import Metrics


class Runtime:
    __slots__ = ("config", "log", "metrics", "ratelimit")

    def __init__(self, config: Config, log: Log, metrics: Metrics, ratelimit: RateLimit) -> None:
        self.config = config
        self.log = log
        self.metrics = metrics
        self.ratelimit = ratelimit
