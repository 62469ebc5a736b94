"""Prints what Python programs print on failure: logging.exception with a
chained exception, then an uncaught one (to stdout, as a container runtime
would keep it in one stream when stderr is redirected)."""
import logging
import sys

logging.basicConfig(stream=sys.stdout, level=logging.INFO,
                    format="%(asctime)s %(levelname)s %(name)s: %(message)s")
log = logging.getLogger("worker")


def parse(value):
    return int(value)


def handle(value):
    try:
        return parse(value)
    except ValueError as e:
        raise RuntimeError(f"bad job {value!r}") from e


for job in ("1", "x", "2", "y"):
    try:
        log.info("job %s -> %s", job, handle(job))
    except RuntimeError:
        log.exception("job %s failed", job)
log.info("done")
sys.stdout.flush()
sys.stderr = sys.stdout
{}["missing"]
