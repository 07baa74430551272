"""`warehouse`: the command line that composes the steps (load, build, publish, export) and the demo.

warehouse demo-data --contacts N --mailings M --days D --seed S --out DIR
warehouse load clang           # Clang/Deployteq exports from SFTP into raw_clang
warehouse load spotler [--contacts FILE]  # Spotler Mail+ reporting API into raw_spotler
warehouse load directo [--full]  # Directo customers XML into raw_directo
warehouse build [-- DBT_ARGS]  # dbt build on the warehouse (models, seeds, tests)
warehouse publish              # marts and segments to analytics.duckdb for BI
warehouse dashboard [--host H] [--port P] [--secrets PATH]  # the BI dashboard (Streamlit): localhost, or a login
warehouse export [SEGMENT ...] [--force] [--dry-run] [--status]   # segments to Deployteq and Spotler
warehouse run [--wait S]       # the scheduled job: load, build, publish, export
warehouse demo                 # a small demo world, its stand-ins, every pipeline step, a summary
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import signal
import sys
import time
from pathlib import Path

from mail_warehouse.settings import PROJECT_DIR, use_project_dlt_settings, warehouse_path

DEMO_DIR = PROJECT_DIR / "var" / "demo"


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, got {value}")
    return number


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date as YYYY-MM-DD, got {value!r}") from None


def _add_world_options(parser: argparse.ArgumentParser, *, contacts: int, mailings: int, days: int) -> None:
    parser.add_argument(
        "--contacts", type=_positive, default=contacts, help=f"people in the world (default {contacts})"
    )
    parser.add_argument(
        "--mailings",
        type=_positive,
        default=mailings,
        help=f"newsletters sent by Clang and Spotler, besides campaign mails (default {mailings})",
    )
    parser.add_argument("--days", type=_positive, default=days, help=f"days of history (default {days})")
    parser.add_argument("--seed", type=int, default=42, help="random seed: one seed, one world (default 42)")
    parser.add_argument(
        "--end",
        type=_date,
        default=None,
        help="the day the world ends, YYYY-MM-DD (default today, UTC); only shifts the calendar",
    )
    parser.add_argument(
        "--steady",
        action="store_true",
        help="a company that keeps --contacts customers over the years (sign-ups replace those lost, the same "
        "mailing rhythm: give --mailings for all --days)",
    )
    machines = parser.add_argument_group("machines that open and click (see README, Human engagement)")
    machines.add_argument(
        "--apple-mail-share",
        type=_share,
        default=None,
        help="share of people reading in Apple Mail, whose privacy proxy opens every mail (default 0.35)",
    )
    machines.add_argument(
        "--scanned-share",
        type=_share,
        default=None,
        help="share of addresses behind a link-scanning corporate gateway (default 0.05)",
    )
    machines.add_argument(
        "--proxy-delay-minutes",
        type=_positive_number,
        default=None,
        help="median minutes from delivery to the proxy's open (default 20)",
    )
    machines.add_argument(
        "--scanner-delay-seconds",
        type=_positive_number,
        default=None,
        help="median seconds from the send to the scanner's clicks (default 20)",
    )


_MACHINE_OPTIONS = ("apple_mail_share", "scanned_share", "proxy_delay_minutes", "scanner_delay_seconds")


def _share(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text} is not a share between 0 and 1")
    return value


def _positive_number(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="warehouse",
        description="mail_warehouse: e-mail marketing data from Clang/Deployteq, Spotler Mail+ and Directo "
        "in DuckDB. Settings come from .dlt/config.toml, .dlt/secrets.toml and environment "
        "variables (SOURCES__CLANG__HOST, ...); the warehouse file from WAREHOUSE_PATH.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    demo_data = commands.add_parser(
        "demo-data",
        help="generate a demo world for all three source systems",
        description="Generate one consistent demo world: Clang daily exports (CSV), Spotler data for the API "
        "stand-in and a Directo customers XML, all about the same people. Deterministic for a seed.",
    )
    _add_world_options(demo_data, contacts=2_000, mailings=40, days=180)
    demo_data.add_argument("--out", type=Path, required=True, help="folder to write the world to")
    demo_data.add_argument("--clang-delimiter", default=";", help="delimiter of the Clang CSV files (default ;)")
    demo_data.set_defaults(handler=cmd_demo_data)

    load = commands.add_parser(
        "load",
        help="load a source system into the warehouse",
        description="Load one source system into its raw_<source> schema of the warehouse (WAREHOUSE_PATH).",
    )
    sources = load.add_subparsers(dest="source", metavar="SOURCE", required=True)
    clang = sources.add_parser(
        "clang",
        help="Clang/Deployteq activity and broadcast exports from SFTP",
        description="Fetch new or changed Clang/Deployteq export files over SFTP into raw_clang. Settings: "
        "[sources.clang] (SOURCES__CLANG__HOST, ...; see the README).",
    )
    clang.set_defaults(handler=cmd_load)
    directo = sources.add_parser(
        "directo",
        help="Directo customers XML (XMLCore)",
        description="Fetch Directo's customers XML into raw_directo: everything on the first run, then only "
        "customers changed since the last sync (minus an overlap). Settings: [sources.directo] "
        "(SOURCES__DIRECTO__URL, secret SOURCES__DIRECTO__KEY; see the README).",
    )
    directo.add_argument(
        "--full", action="store_true", help="ask for every customer and mark those missing from the answer as deleted"
    )
    directo.set_defaults(handler=cmd_load)
    spotler = sources.add_parser(
        "spotler",
        help="Spotler Mail+ reporting API",
        description="Sync Spotler Mail+ mailings, statistics, recipients, opens, clicks, bounces, campaigns and "
        "forms into raw_spotler, paying only for what is new and for mailings still settling. "
        "Settings: [sources.spotler] (SOURCES__SPOTLER__BASE_URL, secrets SOURCES__SPOTLER__CONSUMER_KEY "
        "and SOURCES__SPOTLER__CONSUMER_SECRET; see the README).",
    )
    spotler.add_argument(
        "--contacts",
        type=Path,
        metavar="FILE",
        help="instead: fetch the mail, campaign and form histories of the contacts whose external "
        "ids FILE lists, one per line (one paged call per contact and history)",
    )
    spotler.set_defaults(handler=cmd_load)

    build = commands.add_parser(
        "build",
        help="run dbt build (models, seeds, tests) on the warehouse",
        description="dbt build in the repo on WAREHOUSE_PATH: seeds, models and every test, then the freshness of "
        "every loaded source (a stale one warns; [build] fail_on_stale_sources = true fails). Arguments "
        "after -- go to dbt (for example: warehouse build -- --select marts --full-refresh).",
    )
    build.add_argument("dbt_args", nargs="*", help="extra arguments for dbt build, after --")
    build.set_defaults(handler=cmd_build)

    export = commands.add_parser(
        "export",
        help="send segments to their targets: Deployteq CSV triggers, Spotler campaign triggers and audiences",
        description="Each segment goes to every target its yml meta declares whose platform is configured; the "
        "others are named as skipped. csv_trigger: its CSV uploaded to Deployteq's Upload folder over "
        "SFTP, where the file name starts the campaign ([export.deployteq]: EXPORT__DEPLOYTEQ__HOST, ...). "
        "spotler_campaign_trigger: Spotler's external trigger of that name started for each contact; "
        "spotler_audience: a Spotler audience mirroring the segment (the sources.spotler account). "
        "Only contacts marts.contacts allows to mail are sent, each once (see the README).",
    )
    export.add_argument(
        "segments", nargs="*", metavar="SEGMENT", help="only these segments (default: all with a target)"
    )
    export.add_argument(
        "--force",
        action="store_true",
        help="send even if the segment went out to the target today already or its file is on the server",
    )
    export.add_argument(
        "--dry-run",
        action="store_true",
        help="write the CSV files locally and say per target what would be sent; nothing is sent",
    )
    export.add_argument(
        "--status",
        action="store_true",
        help="instead: per target what became of earlier exports (Deployteq's Done and Failed "
        "folders; Spotler's answers per contact)",
    )
    export.add_argument(
        "--wait",
        type=float,
        default=300,
        metavar="SECONDS",
        help="how long to wait for another export of this warehouse to finish (default 300)",
    )
    export.set_defaults(handler=cmd_export)

    publish = commands.add_parser(
        "publish",
        help="copy the marts and segments to analytics.duckdb for BI (read-only, atomic)",
        description="Copy marts and segments to analytics.duckdb beside the warehouse, under a temporary name then "
        "renamed in one step; only after a dbt build whose models and tests passed.",
    )
    publish.set_defaults(handler=cmd_publish)

    dashboard = commands.add_parser(
        "dashboard",
        help="serve the dashboard on analytics.duckdb (this machine only, or behind a login) and print its URL",
        description="A Streamlit dashboard (mailings, one mailing, contacts, segments and exports, settling mailings) "
        "on the published copy, opened read-only for each page view: it never blocks a load, and a "
        "newly published copy shows on refresh. Needs the `dashboard` extra. Ctrl-C stops it. Without a login it "
        "serves this machine only (a loopback --host); with Streamlit's OpenID Connect login configured in its "
        "secrets file ([auth], README: The dashboard, Access) it shows nothing but a login button until a person "
        "has logged in, and may listen on any address.",
    )
    dashboard.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1, this machine only); any address other machines reach "
        "(0.0.0.0, ::, a LAN address, a host name) needs the login",
    )
    dashboard.add_argument("--port", type=_positive, default=8501, help="port (default 8501)")
    dashboard.add_argument(
        "--secrets",
        metavar="PATH",
        help="the dashboard's secrets file, with the login's [auth] section (default: the setting "
        "[dashboard] secrets_file, env DASHBOARD__SECRETS_FILE, else .streamlit/secrets.toml in the repo)",
    )
    dashboard.set_defaults(handler=cmd_dashboard)

    run = commands.add_parser(
        "run",
        help="the scheduled job: load every configured source, build, publish, export",
        description="Load every configured source, dbt build, publish, export; one lock so overlapping runs never "
        "write at once; exit code 1 if any step failed, after a summary of every step.",
    )
    run.add_argument(
        "--wait",
        type=float,
        default=300.0,
        help="seconds to wait for an overlapping run to finish before giving up (default 300)",
    )
    run.add_argument(
        "--full-refresh",
        action="store_true",
        help="rebuild every incremental model from all data (weekly; see the README)",
    )
    run.set_defaults(handler=cmd_run)

    sync = commands.add_parser(
        "sync",
        help="send back what the warehouse knows: contacts to the mail platform, opt-outs to Directo",
        description="contacts: the Directo customers, one row per address, to each configured mail platform "
        "(Deployteq: a CSV in [export.deployteq] import_dir over SFTP; Spotler: its contacts API), only the rows that "
        "changed since the last delivery. consent: OPTIN=no, dated with the opt-out's day, for each Directo customer "
        "whose opt-out (an unsubscribe, a complaint) Directo does not know, each once. `warehouse run` runs them "
        "when [sync] contacts / consent_to_directo are true (both off by default).",
    )
    sync.add_argument("what", choices=("contacts", "consent"), help="what to send back")
    sync.add_argument(
        "--dry-run", action="store_true", help="say exactly what would be sent (the CSV written locally); send nothing"
    )
    sync.add_argument(
        "--wait", type=float, default=300.0, help="seconds to wait for another sync of this warehouse (default 300)"
    )
    sync.set_defaults(handler=cmd_sync)

    forget = commands.add_parser(
        "forget",
        help="erase people everywhere (GDPR) and keep them out of every later load and export",
        description="Erase each person named by address from every table of the warehouse, dlt's load packages, "
        "the BI copy and its standby, the exported CSV copies and the Spark lake, then rewrite the DuckDB files so "
        "no byte of them remains; their address and the ids tied to it go on a suppression list of keyed hashes "
        "([privacy] secret) that every loader applies. Prints per place how many rows went.",
    )
    forget.add_argument("addresses", nargs="*", metavar="EMAIL", help="the addresses of the people to forget")
    forget.add_argument("--file", type=Path, help="a file with one address a line (# starts a comment)")
    forget.add_argument("--dry-run", action="store_true", help="say per place how many rows would go; change nothing")
    forget.add_argument(
        "--propagate",
        action="store_true",
        help="also list what only the source systems can erase (Clang/Deployteq, Directo, Spotler), with their ids",
    )
    forget.add_argument(
        "--wait", type=float, default=300.0, help="seconds to wait for a running `warehouse run` (default 300)"
    )
    forget.set_defaults(handler=cmd_forget)

    demo = commands.add_parser(
        "demo",
        help="generate a small demo world, start its stand-ins and run every pipeline step",
        description="The whole job on demo data: a demo world, local stand-ins of Clang's SFTP server, the "
        "Spotler API and Directo's XMLCore on loopback, then every pipeline step against them.",
    )
    _add_world_options(demo, contacts=2_000, mailings=40, days=180)
    demo.add_argument("--out", type=Path, default=DEMO_DIR, help="demo folder (default var/demo/ in the repo)")
    demo.add_argument(
        "--serve",
        action="store_true",
        help="keep the stand-ins running until Ctrl-C and print their settings, to try commands by hand",
    )
    demo.set_defaults(handler=cmd_demo)
    return parser


def _demo_package():
    try:
        import mail_warehouse_demo
    except ModuleNotFoundError as missing:
        if missing.name != "mail_warehouse_demo":
            raise
        from mail_warehouse.steps import DemoNotInstalled

        raise DemoNotInstalled(
            "the demo world and stand-ins are not installed: `make setup` installs them, or "
            "`pip install -e './demo' '.[demo]'` from the repo"
        ) from None
    return mail_warehouse_demo


def _generate(args, out: Path, delimiter: str = ";") -> dict:
    _demo_package()
    from mail_warehouse_demo.world import WorldSpec, simulate
    from mail_warehouse_demo.writers import write_world

    machines = {name: getattr(args, name) for name in _MACHINE_OPTIONS if getattr(args, name, None) is not None}
    try:
        spec = WorldSpec(
            contacts=args.contacts,
            mailings=args.mailings,
            days=args.days,
            seed=args.seed,
            steady=args.steady,
            **({"end": args.end} if args.end else {}),
            **machines,
        )
    except ValueError as error:
        raise SystemExit(f"error: {error}") from None
    started = time.monotonic()
    print(
        f"Simulating {spec.contacts:,} contacts, {spec.mailings} mailings over {spec.days} days "
        f"(seed {spec.seed}, ending {spec.end})...",
        flush=True,
    )
    world = simulate(spec)
    print(
        f"  {world.events.num_rows:,} e-mail events in {time.monotonic() - started:.1f} s; writing {out} ...",
        flush=True,
    )
    manifest = write_world(world, out, clang_delimiter=delimiter)
    counts = manifest["counts"]
    print(
        f"Demo world written to {out} in {time.monotonic() - started:.1f} s: {counts['customers']:,} Directo "
        f"customers, {counts['mailings']} mailings, {counts['sends']:,} sends, {counts['events']:,} events, "
        f"{manifest['clang_files']} Clang files."
    )
    return manifest


def cmd_demo_data(args) -> int:
    if len(args.clang_delimiter.replace("\\t", "\t")) != 1:
        print("error: --clang-delimiter takes one character (\\t for tab)", file=sys.stderr)
        return 2
    _generate(args, args.out, args.clang_delimiter.replace("\\t", "\t"))
    return 0


def cmd_demo(args) -> int:
    from mail_warehouse.publish import analytics_path
    from mail_warehouse.run import run_steps

    _demo_package()
    from mail_warehouse.privacy import ensure_demo_secret
    from mail_warehouse_demo.standins.stack import StandinStack

    written = ensure_demo_secret()
    if written is not None:
        print(f"A random [privacy] secret for `warehouse forget` written to {written}")
    world_dir = args.out / "world"
    _generate(args, world_dir)
    with StandinStack(world_dir, args.out / "state") as stack:
        print("Stand-ins running on loopback:")
        for line in stack.describe():
            print(f"  {line}")
        os.environ.update(stack.environment())
        # the scheduled job itself, against the stand-ins
        code, steps = run_steps(wait_seconds=0)
        print("warehouse run: " + _steps_line(steps))
        failures = code != 0
        if args.serve:
            print("\nSettings for these stand-ins (export them in another shell):")
            for key, value in stack.environment().items():
                print(f"  export {key}={value}")
            print("Serving until Ctrl-C ...", flush=True)
            signal.sigwait({signal.SIGINT, signal.SIGTERM})
    uploads = sorted(p.name for p in (args.out / "state" / "deployteq" / "Upload").glob("*.csv"))
    print(
        f"Demo finished{' with failed steps' if failures else ''}: world in {world_dir}; warehouse "
        f"{warehouse_path()}; BI copy {analytics_path()}; CSV triggers in {args.out / 'state' / 'deployteq' / 'Upload'}"
        + (f" ({', '.join(uploads)})" if uploads else "")
        + "."
    )
    return 1 if failures else 0


def cmd_load(args) -> int:
    from mail_warehouse import steps

    return steps.load(args.source, full=getattr(args, "full", False), contacts=getattr(args, "contacts", None))


def cmd_build(args) -> int:
    from mail_warehouse import steps

    return steps.build(args.dbt_args)


def cmd_export(args) -> int:
    from mail_warehouse import steps

    if args.status:
        return steps.export_status(wait_seconds=args.wait)
    return steps.export(args.segments, force=args.force, dry_run=args.dry_run, wait_seconds=args.wait)


def cmd_forget(args) -> int:
    from mail_warehouse import steps

    return steps.forget(
        args.addresses, file=args.file, dry_run=args.dry_run, propagate=args.propagate, wait_seconds=args.wait
    )


def cmd_sync(args) -> int:
    from mail_warehouse import steps

    sync = steps.sync_contacts if args.what == "contacts" else steps.sync_consent
    return sync(dry_run=args.dry_run, wait_seconds=args.wait)


def cmd_publish(args) -> int:
    from mail_warehouse import steps

    return steps.publish()


def cmd_dashboard(args) -> int:
    from mail_warehouse.dashboard import start, url
    from mail_warehouse.dashboard.auth import check_access, secrets_file
    from mail_warehouse.publish import analytics_path

    secrets = secrets_file(args.secrets)
    login = check_access(args.host, secrets)  # an open address without a login stops here, before Streamlit
    server = start(args.host, args.port, secrets=secrets)
    copy = analytics_path()
    if login is None:
        access = "no login: this machine only"
    else:
        access = f"login at {login.provider}" + (
            "" if login.has_allow_list else " (anyone it lets in: allowed_emails / allowed_domains narrow that)"
        )
    print(
        f"Dashboard on {url(args.host, args.port)} reading {copy} read-only"
        + ("" if copy.exists() else " (nothing published yet: run `warehouse publish`)")
        + f"; {access}; Ctrl-C stops it",
        flush=True,
    )
    # a service manager's stop (SIGTERM) reaches only this process: pass it on, or Streamlit outlives us
    signal.signal(signal.SIGTERM, lambda *_: server.terminate())
    try:
        return server.wait()
    except KeyboardInterrupt:  # Streamlit got the same Ctrl-C and stops on its own
        server.wait()
        return 0


def cmd_run(args) -> int:
    from mail_warehouse.run import run_steps

    code, steps = run_steps(args.wait, full_refresh=args.full_refresh)
    print("warehouse run: " + _steps_line(steps))
    return code


def _steps_line(steps) -> str:
    return "; ".join(
        f"{s.name} {s.status}" + (f" ({s.note})" if s.note else "") + (f" {s.seconds:.1f} s" if s.seconds else "")
        for s in steps
    )


def main(argv: list[str] | None = None) -> int:
    from mail_warehouse import steps

    use_project_dlt_settings()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return steps.INTERRUPTED
    except Exception as error:  # the one table of exceptions and exit codes; a bug is raised again
        command = {"load": getattr(args, "source", None), "sync": f"sync {getattr(args, 'what', '')}"}
        return steps.exit_code(error, command.get(args.command) or args.command)


if __name__ == "__main__":
    sys.exit(main())
