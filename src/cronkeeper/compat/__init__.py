"""Facades that let code written for other schedulers run on cronkeeper with only its imports changed.

``cronkeeper.compat.apscheduler`` speaks APScheduler 3's API; the modules inside that package are its parts.
Import from ``cronkeeper.compat.apscheduler``, which is the stable face.
"""
