#!/bin/sh
# SPDX-License-Identifier: MIT
# The image's HEALTHCHECK: GET /healthz on the metrics listener (200: healthy).
port=${WGATE_METRICS_LISTEN##*:}
exec busybox wget -q -T 2 -O /dev/null "http://127.0.0.1:${port:-9586}/healthz"
