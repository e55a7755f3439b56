"""The statement that handles a schedule's occurrence (schedules.sql fire_occurrence) acts once,
however many servers run it at once for the same occurrence: raced here on 8 connections, with
no server running, so nothing else handles it."""

from __future__ import annotations

import asyncio
import uuid

import psycopg
from psycopg import sql

from workflowstate.server.db.database import Database, PoolSettings
from workflowstate.server.schedules.store import ScheduleStore
from workflowstate.server.schedules.timing import decide

RACERS = 8


async def test_of_racing_statements_for_one_occurrence_exactly_one_acts(database_url: str, db: psycopg.Connection) -> None:
    schema = f"t_{uuid.uuid4().hex[:10]}"
    database = Database(database_url, schema, PoolSettings(min_size=RACERS, max_size=RACERS))
    await database.open()
    try:
        store = ScheduleStore(database)
        table = sql.Identifier(schema)
        for round_ in range(20):
            schedule_id = f"race-{round_}"
            db.execute(
                sql.SQL(
                    "INSERT INTO {}.schedules (schedule_id, workflow, \"interval\", timezone, input, overlap, catch_up, next_fire_time) "
                    "VALUES (%s, 'raced', interval '1 second', 'UTC', 'null', 'allow', 'skip', date_trunc('second', now()))"
                ).format(table),
                (schedule_id,),
            )
            (due,) = [schedule for schedule in await store.due(100) if schedule.schedule_id == schedule_id]
            decision = decide(due.timing, due.next_fire_time, due.now, due.catch_up)
            outcomes = await asyncio.gather(*(store.fire(due, decision) for _ in range(RACERS)))
            acted = [fired for fired in outcomes if fired is not None]
            assert len(acted) == 1 and acted[0].run_id is not None and not acted[0].duplicate, outcomes
            runs = db.execute(sql.SQL("SELECT schedule_time FROM {}.runs WHERE schedule_id = %s").format(table), (schedule_id,)).fetchall()
            assert runs == [(decision.fire_time,)]
            next_fire_time = db.execute(sql.SQL("SELECT next_fire_time FROM {}.schedules WHERE schedule_id = %s").format(table), (schedule_id,)).fetchone()
            assert next_fire_time == (decision.next_fire_time,)
    finally:
        await database.close()
