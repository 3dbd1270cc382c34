"""An asyncio bot whose scheduled jobs are coroutines running on the bot's own event loop.

A stand-in for a chat bot (aiogram, discord.py, python-telegram-bot...) without the network: one event loop
runs the bot, and its jobs use the bot's client and state on that loop, with no threads and no locks.
``AsyncScheduler`` hands coroutine jobs to the loop that started it, and starts and stops with the bot.

- ``clean-tokens``       00:00 and 12:00    forget access tokens that have expired
- ``delete-messages``    every minute       delete self-destructing messages whose time has come
- ``expire-broadcasts``  every hour         take down announcements past their end
- ``reset-quotas``       daily at midnight  reset everyone's daily quota

Run it (history in ``bot.db`` in the working directory, or ``$CRONKEEPER_DB``); Ctrl-C stops it::

    cd examples/asyncio_bot
    python app.py
    cronkeeper --db sqlite:///bot.db runs list --job delete-messages    # from another terminal
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from datetime import datetime, timedelta

from cronkeeper import AsyncScheduler

log = logging.getLogger("bot")


class ChatClient:
    """Stand-in for the chat service's API client: every call is a coroutine (a network request)."""

    def __init__(self) -> None:
        self.deleted: list[int] = []

    async def delete_message(self, message_id: int) -> None:
        await asyncio.sleep(0)  # where a real client awaits the network
        self.deleted.append(message_id)


class Bot:
    """The bot: its client, its state, and its scheduled jobs (one coroutine method each)."""

    def __init__(self, scheduler: AsyncScheduler | None = None) -> None:
        """``scheduler`` chooses the database and clock; by default ``$CRONKEEPER_DB`` or bot.db here."""
        self.scheduler = scheduler or AsyncScheduler(os.environ.get("CRONKEEPER_DB", "sqlite:///bot.db"))
        self.client = ChatClient()
        # Plain dicts, no locks: only coroutines on the bot's loop ever touch them.
        self.tokens: dict[str, datetime] = {}  # token -> expires at
        self.self_destructing: dict[int, datetime] = {}  # message id -> delete at
        self.broadcasts: dict[int, datetime] = {}  # message id -> ends at
        self.quota_used: dict[int, int] = {}  # user id -> requests today
        self.loop: asyncio.AbstractEventLoop | None = None
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        """Run until :meth:`stop`.  The scheduler starts on this loop, so the jobs run here too."""
        self.loop = asyncio.get_running_loop()
        self.schedule_jobs()
        async with self.scheduler:  # start() now, stop() (running jobs may finish) on the way out
            log.info("bot started")
            await self._stopping.wait()  # a real bot: await dispatcher.start_polling(bot)
        log.info("bot stopped")

    def stop(self) -> None:
        self._stopping.set()

    def schedule_jobs(self) -> None:
        """Declare the jobs; ``add_job`` on an existing id updates it, so this runs at every start."""
        self.scheduler.add_job(self.clean_tokens, id="clean-tokens", cron="0 0,12 * * *")
        self.scheduler.add_job(self.delete_messages, id="delete-messages", every="1m")
        self.scheduler.add_job(self.expire_broadcasts, id="expire-broadcasts", every="1h")
        self.scheduler.add_job(self.reset_quotas, id="reset-quotas", cron="0 0 * * *")

    def _on_bot_loop(self) -> None:
        """Every job starts by checking what the bot's lock-free state relies on: that it runs on the bot's
        own loop, never on one of the scheduler's threads."""
        if asyncio.get_running_loop() is not self.loop:
            raise RuntimeError("a job ran outside the bot's event loop")

    def _now(self) -> datetime:
        """The time for a job: the scheduler's clock (a fake one in tests), not the wall clock."""
        self._on_bot_loop()
        return self.scheduler.clock.now()

    # ---- the jobs: each returns what it did, kept as the run's result --------------------------------------

    async def clean_tokens(self) -> dict[str, int]:
        now = self._now()
        expired = [token for token, expires_at in self.tokens.items() if expires_at <= now]
        for token in expired:
            del self.tokens[token]
        return {"removed": len(expired)}

    async def delete_messages(self) -> dict[str, int]:
        now = self._now()
        due = [message for message, delete_at in self.self_destructing.items() if delete_at <= now]
        for message_id in due:
            await self.client.delete_message(message_id)
            del self.self_destructing[message_id]
        return {"deleted": len(due)}

    async def expire_broadcasts(self) -> dict[str, int]:
        now = self._now()
        ended = [message for message, ends_at in self.broadcasts.items() if ends_at <= now]
        for message_id in ended:
            await self.client.delete_message(message_id)
            del self.broadcasts[message_id]
        return {"taken_down": len(ended)}

    async def reset_quotas(self) -> dict[str, int]:
        self._on_bot_loop()
        users = len(self.quota_used)
        self.quota_used.clear()
        return {"users": users}


async def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)  # the schema check's chatter at each start
    bot = Bot()
    for signum in (signal.SIGINT, signal.SIGTERM):  # Ctrl-C or a service manager: a graceful stop
        asyncio.get_running_loop().add_signal_handler(signum, bot.stop)
    # Something for the jobs to do in the first minutes.
    soon = bot.scheduler.clock.now() + timedelta(minutes=1)
    bot.self_destructing.update({101: soon, 102: soon + timedelta(minutes=1)})
    bot.quota_used.update({1: 3, 2: 5})
    await bot.run()


if __name__ == "__main__":
    asyncio.run(main())
