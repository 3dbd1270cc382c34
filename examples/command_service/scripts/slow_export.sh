#!/bin/sh
# Stand-in for an export that hangs on a stuck query: it never finishes on its own, so its timeout ends it.
echo "exporting..."
sleep 30
echo "never reached"
