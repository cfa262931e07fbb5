#!/usr/bin/env bash
# Stop processes we started, by PID: send SIG (default TERM; use SIG=INT for a
# PostgreSQL fast shutdown), wait up to TIMEOUT seconds (default 15), then
# SIGKILL. Descendants that outlive their parent (e.g. the per-connection
# processes of an sshd started by start-vm.sh) are stopped the same way
# afterwards. Never matches processes by name.
#
# usage: [SIG=TERM] [TIMEOUT=15] stop-pid.sh PID...
#
# Orphans are re-parented to PID 1, which may reap them lazily, so a zombie
# ("Z" in /proc/PID/stat) counts as stopped.
set -uo pipefail
SIG=${SIG:-TERM}; TIMEOUT=${TIMEOUT:-15}

alive() {
  local s
  s=$(sed -e 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
  [ -n "$s" ] && [ "$s" != Z ] && [ "$s" != X ]
}

descendants() {
  local kid
  for kid in $(ps -o pid= --ppid "$1" 2>/dev/null); do
    echo "$kid"
    descendants "$kid"
  done
}

# stop_one SIG TIMEOUT PID: signal, wait, SIGKILL if still alive.
stop_one() {
  local sig=$1 timeout=$2 pid=$3 i
  alive "$pid" || return 0
  kill -"$sig" "$pid" 2>/dev/null || return 0
  kill -CONT "$pid" 2>/dev/null || true
  for ((i = 0; i < timeout * 50; i++)); do
    alive "$pid" || return 0
    sleep 0.02
  done
  echo "stop-pid.sh: pid $pid still alive after ${timeout}s, sending SIGKILL" >&2
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 250; i++)); do alive "$pid" || return 0; sleep 0.02; done
  echo "stop-pid.sh: pid $pid survived SIGKILL" >&2
  return 1
}

rc=0
for pid in "$@"; do
  if ! [[ $pid =~ ^[0-9]+$ ]] || [ "$pid" -le 1 ]; then
    echo "stop-pid.sh: ignoring bad pid '$pid'" >&2; rc=1; continue
  fi
  kids=$(descendants "$pid")
  stop_one "$SIG" "$TIMEOUT" "$pid" || rc=1
  for kid in $kids; do
    stop_one TERM 5 "$kid" || rc=1
  done
done
exit $rc
