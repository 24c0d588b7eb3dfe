import asyncio
import cProfile
import pstats
import sys
import time

from telegram import Update

from benchmarks import bench_vote_storm as b
from benchmarks.bench_updates import build_bot, scratch_database
from playground.emulator import TelegramEmulator
from playground.updates import callback, command
from storage.db import Database


async def main():
    async with scratch_database(sys.argv[1] if len(sys.argv) > 1 else None) as url:
        db = Database(url)
        await db.upgrade()
        people = await b.set_up(db, 70, 4)
        tg = TelegramEmulator()
        tg.chats[b.CHAT.id] = b.CHAT.to_dict()
        app = build_bot(db, tg)
        async with app:
            opener = people[0][0]
            await app.process_update(
                Update.de_json(command("/poll Q? | a | b", opener, b.CHAT), app.bot)
            )
            [posted] = [c for c in tg.calls if c.method == "sendMessage"]
            await app.tallies.settle()
            msg = tg._message(posted.params, message_id=int(b.posted_id(tg)))
            data = [d for _l, d in posted.buttons()]
            ups = [
                Update.de_json(
                    callback(data[(i) % 2], people[i % 70][i // 70], msg, b.CHAT), app.bot
                )
                for i in range(280)
            ]
            t = time.perf_counter()
            for u in ups[:140]:
                await app.process_update(u)
            print(f"per vote {(time.perf_counter() - t) / 140 * 1000:.1f} ms (no profiler)")
            pr = cProfile.Profile()
            pr.enable()
            for u in ups[140:]:
                await app.process_update(u)
            pr.disable()
            pstats.Stats(pr).sort_stats("cumtime").print_stats(45)
        await db.dispose()


asyncio.run(main())
