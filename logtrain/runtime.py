"""What every component is handed: the configuration, the agent's log, its
metrics and the budget inputs share. The agent owns the only instance."""

from __future__ import annotations

from logtrain.budget import PartialBudget
from logtrain.config import Config
from logtrain.log import Log, RateLimit
from logtrain.metrics import Metrics


class Runtime:
    __slots__ = ("config", "log", "metrics", "ratelimit", "partial")

    def __init__(self, config: Config, log: Log, metrics: Metrics, ratelimit: RateLimit) -> None:
        self.config = config
        self.log = log
        self.metrics = metrics
        self.ratelimit = ratelimit
        # unfinished input of every connection of every input, together
        self.partial = PartialBudget(config.input_partial_budget)
