#!/bin/sh
# Stand-in for a sync with an unreliable partner: the first two attempts fail, the third succeeds.  The count
# is kept in $STATE_DIR so that it survives from one attempt (one process) to the next.
set -eu
mkdir -p "$STATE_DIR"
count_file="$STATE_DIR/sync-failures"
failures=$(cat "$count_file" 2>/dev/null || echo 0)
if [ "$failures" -lt 2 ]; then
    echo $((failures + 1)) > "$count_file"
    echo "partner API did not answer (attempt $((failures + 1)))" >&2
    exit 1
fi
rm -f "$count_file"
echo "synced 42 records"
