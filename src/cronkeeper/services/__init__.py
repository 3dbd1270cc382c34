"""The services: the only code the faces (library, CLI, web, compat) call to change or read jobs, runs,
users and tokens.  They validate at the edge (through :mod:`cronkeeper.specs`), keep the rules that must
hold whichever face asks (version preconditions, idempotency, what may be cancelled), write through the store
contracts and record every change in the audit log."""
