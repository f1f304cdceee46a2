"""gunicorn settings for running the web process with plain gunicorn.

Use it from the repository (or image) root, after migrating the database,
since the app itself never migrates:

    python -m bridge db upgrade
    gunicorn -c deploy/gunicorn.conf.py 'bridge.app:create_app()'

``python -m bridge serve`` builds the same server in code and migrates
first; this file is for process managers that start gunicorn themselves
(the systemd unit and the Kubernetes web Deployment). The bind address,
threads and log level come from the bridge's own ``BRIDGE_*`` settings, so
both ways of starting read one set of variables.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

# gunicorn imports this file by path; the bridge package sits one level up.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bridge.config import Settings, load_settings  # noqa: E402
from bridge.errors import ConfigError  # noqa: E402
from bridge.metrics_dir import prepare  # noqa: E402
from bridge.web.server import (  # noqa: E402
    GRACEFUL_TIMEOUT,
    REQUEST_TIMEOUT,
    forget_worker_metrics,
)

# gthread workers each hold BRIDGE_WEB_THREADS threads, so a few processes
# go a long way; past this many they mostly contend for the database.
MAX_AUTO_WORKERS = 12
CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")
# gunicorn makes its heartbeat files there with mkstemp, so sharing is safe.
RAM_DISK = Path("/dev/shm")  # noqa: S108


def count_cpus() -> int:
    """Return the CPUs this process may use, honouring a container's quota.

    ``os.cpu_count()`` sees every core of the host; a container limited to
    one CPU on a 32-core node would otherwise start 65 workers.
    """
    cpus = len(os.sched_getaffinity(0))
    try:
        quota, period = CGROUP_CPU_MAX.read_text().split()
    except (OSError, ValueError):
        return cpus
    if quota == "max":
        return cpus
    return max(1, min(cpus, math.ceil(int(quota) / int(period))))


def choose_workers(settings: Settings) -> int:
    """Return BRIDGE_WEB_WORKERS when set, else 2 x CPUs + 1, capped."""
    if os.environ.get("BRIDGE_WEB_WORKERS"):
        return settings.web_workers
    return min(2 * count_cpus() + 1, MAX_AUTO_WORKERS)


def load_or_exit() -> Settings:
    """Return the validated settings, or print each mistake and exit 2."""
    try:
        return load_settings()
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"config error: {problem}", file=sys.stderr)
        sys.exit(2)


bridge_settings = load_or_exit()

# Here, in the master before any worker forks, so every worker inherits
# PROMETHEUS_MULTIPROC_DIR and /metrics adds up all of them.
prepare(bridge_settings.metrics_dir, "web")

bind = f"{bridge_settings.host}:{bridge_settings.port}"
workers = choose_workers(bridge_settings)
worker_class = "gthread"
threads = bridge_settings.web_threads
proc_name = "bridge-web"

# A request gets REQUEST_TIMEOUT seconds; on SIGTERM gunicorn stops
# accepting and lets requests in flight finish for GRACEFUL_TIMEOUT
# seconds (keep the pod's terminationGracePeriodSeconds above it).
timeout = REQUEST_TIMEOUT
graceful_timeout = GRACEFUL_TIMEOUT
keepalive = 5

# Recycle workers now and then, staggered, so a slow leak cannot grow.
max_requests = 5000
max_requests_jitter = 500

loglevel = bridge_settings.log_level.lower()
errorlog = "-"
accesslog = "-"
# Path without the query string (a source could carry a token there),
# status, bytes, milliseconds, and the X-Request-ID of the response: the
# caller's own id, or the one the app made, as the app's log lines show it.
access_log_format = (
    '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms '
    'request_id=%({x-request-id}o)s agent="%(a)s"'
)

# One control socket path per user would clash between instances.
control_socket_disable = True

# Worker heartbeats on a RAM disk: an overlay filesystem in a container can
# stall them long enough for gunicorn to kill healthy workers.
if RAM_DISK.is_dir():
    worker_tmp_dir = str(RAM_DISK)

# A finished worker's live gauges leave the metrics directory with it.
child_exit = forget_worker_metrics
