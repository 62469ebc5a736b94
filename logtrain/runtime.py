"""What every component is handed: the configuration, the agent's log, its
metrics, the budget inputs share and the supervisor of long-running tasks. The agent owns the only instance."""

from __future__ import annotations

from typing import Any

from logtrain.budget import PartialBudget
from logtrain.config import Config
from logtrain.log import Log, RateLimit
from logtrain.metrics import Metrics
from logtrain.supervise import Supervisor


class Runtime:
    __slots__ = ("config", "log", "metrics", "ratelimit", "partial", "tasks", "persistent",
                 "spools")

    def __init__(self, config: Config, log: Log, metrics: Metrics, ratelimit: RateLimit) -> None:
        self.config = config
        self.log = log
        self.metrics = metrics
        self.ratelimit = ratelimit
        # unfinished input of every connection of every input, together
        self.partial = PartialBudget(config.input_partial_budget)
        # long-running tasks, restarted when they crash
        self.tasks = Supervisor(log, metrics, ratelimit)
        # the persistent store (logtrain.persistent_store), set by the agent
        # when PERSISTENT=true: persistent:// drains and reads share it
        self.persistent: Any = None
        # every drain's disk spool (logtrain.spool.Spools), set by the agent
        # when STATE_DIR is usable and SPOOL_MAX_BYTES is not 0
        self.spools: Any = None
