"""The engine: what turns stored jobs into runs.  :mod:`~cronkeeper.engine.loop` sleeps until something is
due, claims it through the store in one transaction and keeps this process's heartbeat;
:mod:`~cronkeeper.engine.dispatch` hands claimed runs to the executors on the dot and enforces timeouts and
cancellation; :mod:`~cronkeeper.engine.outcomes` batches what runs report and writes it back.  It owns no
rule about what a job is (that is the pure core) and no SQL (that is the store)."""
