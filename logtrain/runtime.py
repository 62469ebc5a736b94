"""What every component is handed: the configuration, the agent's log and its
metrics. The agent owns the only instance."""

from __future__ import annotations

from dataclasses import dataclass

from logtrain.config import Config
from logtrain.log import Log, RateLimit
from logtrain.metrics import Metrics


@dataclass
class Runtime:
    config: Config
    log: Log
    metrics: Metrics
    ratelimit: RateLimit
