"""``onward schedule create|list|describe|pause|unpause|trigger|backfill|delete``: the
argument tree and the commands, a thin layer over the engine's schedule calls."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from . import payloads
from .cli_options import Parser, add_common, described
from .cli_output import emit
from .errors import BadInput
from .schedule_spec import parse_cron, parse_duration, parse_every, zone
from .schedules import OVERLAP_POLICIES

__all__ = ["add_schedule_commands", "run_schedule"]


def _checked(check: Callable[[str], object]) -> Callable[[str], str]:
    """``type=`` that refuses, while the line is parsed (before a database is opened or
    created), text ``check`` raises BadInput for; the text itself is kept."""
    def convert(text: str) -> str:
        try:
            check(text)
        except BadInput as err:
            raise argparse.ArgumentTypeError(str(err)) from None
        return text
    return convert


def _duration(what: str) -> Callable[[str], str]:
    return _checked(lambda text: parse_duration(text, what))


def _action(sub: Any, name: str, summary: str, examples: list[str], *, output: bool = False,
            code: bool = False) -> Parser:
    p: Parser = sub.add_parser(name, help=summary, **described(summary, "", examples))
    add_common(p, output=output, code=code)
    if name != "list":
        p.add_argument("sid", metavar="SID", help="the schedule's id")
    return p


def add_schedule_commands(sub: Any) -> None:
    """Add ``onward schedule`` and its actions to the subcommands ``sub``."""
    top = sub.add_parser("schedule", help="durable cron and interval schedules",
                         **described("durable cron and interval schedules",
                                     "Start a workflow at cron times or intervals, in a time "
                                     "zone; any worker fires a schedule, once per fire time.",
                                     ["onward schedule create nightly --workflow report "
                                      "--cron '0 2 * * *' --tz Europe/Berlin",
                                      "onward schedule describe nightly --json"]))
    actions = top.add_subparsers(dest="schedule_command", required=True, parser_class=Parser,
                                 metavar="ACTION", title="actions", prog="onward schedule")
    p = _action(actions, "create", "create a schedule (a missing database is created)",
                ["onward schedule create tick --workflow ping --every 5m",
                 "onward schedule create weekly --workflow report --input '[\"eu\"]' "
                 "--cron '30 9 * * mon' --tz America/New_York --overlap buffer_one"],
                code=True)
    p.set_defaults(creates=True)
    p.add_argument("--workflow", required=True, metavar="W", help="the workflow to start")
    p.add_argument("--input", metavar="JSON", type=_checked(lambda t: payloads.loads(t, "--input")),
                   help="its input; a JSON list = positional args")
    when = p.add_mutually_exclusive_group(required=True)
    when.add_argument("--cron", metavar="EXPR",
                      type=_checked(lambda t: parse_cron(t, zone("UTC"))),
                      help="five-field cron expression, e.g. '0 2 * * *', read in --tz")
    when.add_argument("--every", metavar="DURATION", type=_checked(parse_every),
                      help="an interval from the epoch such as 30s, 5m, 1h, 1d; "
                           "DURATION/OFFSET shifts it (1h/15m)")
    p.add_argument("--tz", default="UTC", metavar="ZONE", type=_checked(zone),
                   help="IANA time zone of --cron (default %(default)s)")
    p.add_argument("--overlap", default="skip", choices=OVERLAP_POLICIES,
                   help="when a fire comes while the previous run is open "
                        "(default %(default)s)")
    p.add_argument("--catchup", default="1m", metavar="DURATION",
                   type=_duration("--catchup"),
                   help="after downtime, fires at most this old still start "
                        "(default %(default)s)")
    p.add_argument("--jitter", metavar="DURATION", type=_duration("--jitter"),
                   help="delay each fire by up to this much (the same delay on every "
                        "worker)")
    p.add_argument("--paused", action="store_true", help="create it paused")
    p.add_argument("--note", metavar="TEXT", help="a note shown with the schedule")

    _action(actions, "list", "every schedule with its next fire", ["onward schedule list"],
            output=True)
    _action(actions, "describe", "a schedule's spec, next fires, recent runs and counts",
            ["onward schedule describe nightly --json"], output=True)
    p = _action(actions, "pause", "stop a schedule firing until unpaused",
                ["onward schedule pause nightly --note 'db maintenance'"])
    p.add_argument("--note", metavar="TEXT", help="why (shown with the schedule)")
    p = _action(actions, "unpause", "let a paused schedule fire again",
                ["onward schedule unpause nightly"])
    p.add_argument("--note", metavar="TEXT", help="a new note")
    _action(actions, "trigger", "fire a schedule now (its overlap policy applies)",
            ["onward schedule trigger nightly"])
    p = _action(actions, "backfill", "fire a schedule for its fire times in [start, end)",
                ["onward schedule backfill nightly --start 2026-12-01T00:00:00Z "
                 "--end 2026-12-05T00:00:00Z"])
    p.add_argument("--start", required=True, metavar="ISO", help="first time covered")
    p.add_argument("--end", required=True, metavar="ISO", help="end (not covered)")
    p.add_argument("--overlap", choices=OVERLAP_POLICIES,
                   help="overlap policy for the backfill (default: the schedule's)")
    _action(actions, "delete", "delete a schedule (the runs it started go on)",
            ["onward schedule delete nightly"])


def _list_text(items: list[dict[str, Any]]) -> None:
    if not items:
        print("no schedules")
        return
    for s in items:
        spec = s["spec"].get("cron") or f"every {s['spec'].get('every')}"
        upcoming = s["next_fires"][0] if s["next_fires"] else "-"
        state = "paused" if s["paused"] else f"next {upcoming}"
        counts = s["counts"]
        print(f"{s['id']}  {s['workflow']}  {spec} ({s['tz']})  {state}  "
              f"fired {counts['fired']} skipped {counts['skipped']} missed {counts['missed']}")


def _describe_text(s: dict[str, Any]) -> None:
    spec = s["spec"].get("cron") or f"every {s['spec'].get('every')}"
    print(f"{s['id']}: {s['workflow']} {spec} in {s['tz']}, overlap {s['overlap']}, "
          f"catch-up {s['catchup']:g}s, jitter {s['jitter']:g}s")
    if s["paused"]:
        print(f"paused{': ' + s['note'] if s['note'] else ''}")
    elif s["note"]:
        print(f"note: {s['note']}")
    print("next fires: " + ", ".join(s["next_fires"]))
    counts = s["counts"]
    print(f"fired {counts['fired']}, skipped {counts['skipped']}, missed {counts['missed']}")
    for r in s["recent"]:
        print(f"  {r['fire_time']}  {r['id']}  {r['status']}")


def run_schedule(eng: Any, args: argparse.Namespace) -> int:
    """Run ``onward schedule ACTION``; the exit status."""
    action = args.schedule_command
    if action == "create":
        value = payloads.loads(args.input, "--input") if args.input is not None else None
        positional = value if isinstance(value, list) else ([] if value is None else [value])
        eng.create_schedule(args.sid, args.workflow, *positional, cron=args.cron,
                            every=args.every, tz=args.tz, overlap=args.overlap,
                            catchup=args.catchup, jitter=args.jitter, paused=args.paused,
                            note=args.note)
        print(f"created schedule {args.sid}")
    elif action == "list":
        emit(eng.schedules(), args.output, _list_text)
    elif action == "describe":
        emit(eng.describe_schedule(args.sid), args.output, _describe_text)
    elif action == "pause":
        eng.pause_schedule(args.sid, args.note)
        print(f"paused schedule {args.sid}")
    elif action == "unpause":
        eng.unpause_schedule(args.sid, args.note)
        print(f"unpaused schedule {args.sid}")
    elif action == "trigger":
        print(f"schedule {args.sid}: {eng.trigger_schedule(args.sid)}")
    elif action == "backfill":
        tally = eng.backfill_schedule(args.sid, args.start, args.end, args.overlap)
        print(f"schedule {args.sid} backfilled: " +
              ", ".join(f"{n} {what}" for what, n in tally.items()))
    else:
        eng.delete_schedule(args.sid)
        print(f"deleted schedule {args.sid}")
    return 0
