#!/bin/sh
# SPDX-License-Identifier: MIT
# The image's HEALTHCHECK: GET /healthz on the metrics listener (200: healthy). No -T:
# Debian 12's busybox wget crashes with it; the HEALTHCHECK's --timeout bounds the wait.
port=${WGATE_METRICS_LISTEN##*:}
exec busybox wget -q -O /dev/null "http://127.0.0.1:${port:-9586}/healthz"
