"""Facades that let code written for other schedulers run on cronkeeper with only its imports changed.

``cronkeeper.compat.apscheduler`` speaks APScheduler 3's API.  The modules prefixed ``aps_`` are its parts;
import from ``cronkeeper.compat.apscheduler``, which is the stable face.
"""
