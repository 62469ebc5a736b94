#!/bin/sh
# Regenerates the JSON lines the structured-log tests read, written by real
# loggers: pino (Node.js, installed from npm into a temporary folder) and
# structlog (Python).
set -e
cd "$(dirname "$0")"
tmp=$(mktemp -d)
(cd "$tmp" && npm install --silent pino@9 >/dev/null)
NODE_PATH="$tmp/node_modules" node -e '
const pino = require("pino");
const log = pino(pino.destination({ sync: true }));
log.info("server listening");
log.warn({ port: 8080 }, "slow start");
log.error(new Error("boom"), "request failed");
log.fatal("dying");
log.debug("not shown at the default level");
' > pino.txt
python3 - > structlog.txt <<'PY'
import structlog
structlog.configure(processors=[structlog.processors.add_log_level,
                                structlog.processors.TimeStamper(fmt="iso"),
                                structlog.processors.JSONRenderer()])
log = structlog.get_logger()
log.info("user logged in", user="alice")
log.warning("disk almost full", percent=91)
log.error("payment failed", order=17)
PY
rm -rf "$tmp"
