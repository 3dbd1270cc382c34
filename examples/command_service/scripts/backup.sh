#!/bin/sh
# Stand-in for a real dump (pg_dump, sqlite3 .backup, ...): writes one file per run into $BACKUP_DIR.
# cronkeeper gives every command its job and run ids; a non-zero exit status fails the run (and retries it).
set -eu
mkdir -p "$BACKUP_DIR"
file="$BACKUP_DIR/backup-run-$CRONKEEPER_RUN_ID.sql"
echo "-- dump made by run $CRONKEEPER_RUN_ID of job $CRONKEEPER_JOB_ID" > "$file"
echo "wrote $file"
