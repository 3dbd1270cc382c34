"""Alerts reach people: channels (Apprise URLs, checked and masked), messages (Jinja2 templates) and the
courier that delivers the outbox.

What calls for an alert is decided where outcomes are recorded (:mod:`cronkeeper.incidents`, applied by
:mod:`cronkeeper.store.incidents` in the same transaction); this package only delivers what was written, from
any live node, each alert once, and never on a job's path: a slow or dead channel delays a courier thread,
not a run, the loop or a shutdown.
"""
