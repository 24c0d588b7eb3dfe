"""How long the session planner takes, and how that grows with cities and days.

Run from the project root::

    .venv/bin/python -m benchmarks.bench_planning [--rounds R]

Cities are the network's real ones (playground/data/b40-cities.csv: their zones and countries),
repeated under new ids to reach the size asked for. Each scenario is timed twice:

* ``warm``: the public-holiday tables for the years involved are already built;
* ``cold``: they are dropped before every run, as on the first plan after a restart.

Cities sharing a zone, country and working hours share one availability mask, so the
real network (13 such calendars in the file) costs far less than its number of cities suggests. The
``distinct hours`` rows give every city hours of its own, the worst case for that sharing.
"""

from __future__ import annotations

import argparse
import csv
import random
import statistics
import time as clock
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from scheduler.planning import Busy, PlanningCity, WorkingHours, clear_holiday_cache, plan

CITIES_CSV = Path(__file__).parent.parent / "playground" / "data" / "b40-cities.csv"
START = date(2026, 1, 5)
NOW = datetime(2026, 1, 1, tzinfo=UTC)
SESSION = timedelta(minutes=60)


@dataclass(frozen=True)
class Scenario:
    label: str
    cities: list[PlanningCity]
    days: int
    busy: list[Busy]
    burden: dict[int, int]


def network(size: int, *, distinct_hours: bool = False) -> list[PlanningCity]:
    with CITIES_CSV.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    cities = []
    for index in range(size):
        row = rows[index % len(rows)]
        hours = WorkingHours()
        if distinct_hours:
            # 08:00-16:00 to 09:45-17:45 and back, by quarter hours, six sets of weekdays:
            # no two cities of one zone and country share all three.
            shift, day_off = index % 8, index // 8 % 6  # day_off 5 is Saturday: none
            hours = WorkingHours(
                time(8 + shift // 4, shift % 4 * 15),
                time(16 + shift // 4, shift % 4 * 15),
                frozenset(range(5)) - {day_off},
            )
        name = f"{row['name']} {index + 1}"
        cities.append(PlanningCity(index + 1, name, row["country"], row["timezone"], hours))
    return cities


def scenario(size: int, days: int, *, distinct_hours: bool = False, seed: int = 40) -> Scenario:
    """``size`` cities over ``days`` days, a busy session per 7 cities, some burden."""
    rng = random.Random(seed)
    cities = network(size, distinct_hours=distinct_hours)
    ids = [city.id for city in cities]
    busy = []
    for _ in range(max(1, size // 7)):
        begins = datetime.combine(START, time(6), tzinfo=UTC) + timedelta(
            days=rng.randrange(days), minutes=15 * rng.randrange(36)
        )
        busy.append(Busy(frozenset(rng.sample(ids, 6)), begins, begins + timedelta(minutes=90)))
    burden = {city_id: rng.randrange(4) for city_id in ids}
    label = f"{size} cities × {days} days" + (", distinct hours" if distinct_hours else "")
    return Scenario(label, cities, days, busy, burden)


def run(case: Scenario) -> None:
    found = plan(
        case.cities,
        start=START,
        end=START + timedelta(days=case.days - 1),
        duration=SESSION,
        busy=case.busy,
        now=NOW,
        burden=case.burden,
    )
    if len(found) != 5:
        raise SystemExit(f"{case.label}: expected 5 candidates, got {len(found)}")


def timed(action: Callable[[], None], rounds: int, *, before: Callable[[], None]) -> list[float]:
    times = []
    for _ in range(rounds):
        before()
        started = clock.perf_counter()
        action()
        times.append(clock.perf_counter() - started)
    return times


def report(case: Scenario, rounds: int) -> float:
    run(case)  # fills the holiday tables for the warm runs
    warm = timed(lambda: run(case), rounds, before=lambda: None)
    cold = timed(lambda: run(case), max(3, rounds // 5), before=clear_holiday_cache)
    print(
        f"{case.label:<38} warm median {ms(statistics.median(warm))} "
        f"(min {ms(min(warm))}, max {ms(max(warm))})   cold median {ms(statistics.median(cold))}"
    )
    return statistics.median(warm)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    rounds = args.rounds

    print("Targets: (a) under 50 ms, (b) under 1 s (warm medians).")
    print("(a)")
    report(scenario(70, 92), rounds)
    print("(b)")
    report(scenario(500, 365), max(3, rounds // 3))
    report(scenario(500, 365, distinct_hours=True), max(3, rounds // 3))

    print("Growth with cities (92 days):")
    for distinct in (False, True):
        base = None
        for size in (70, 140, 280):
            median = report(scenario(size, 92, distinct_hours=distinct), rounds)
            base = base or median
            print(f"{'':38} × {median / base:.2f} of the first")
    print("Growth with days (70 cities):")
    for distinct in (False, True):
        base = None
        for days in (92, 184, 365):
            median = report(scenario(70, days, distinct_hours=distinct), rounds)
            base = base or median
            print(f"{'':38} × {median / base:.2f} of the first")


if __name__ == "__main__":
    main()
