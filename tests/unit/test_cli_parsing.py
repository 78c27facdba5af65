"""The command line in-process: arguments, environment defaults, exit codes, output streams."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from cowrieprocessor import cli
from cowrieprocessor.cli.errors import UsageError
from cowrieprocessor.cli.parser import DEFAULT_BATCH_SIZE, parse_args
from cowrieprocessor.cli.progress import Progress, ProgressState, format_duration
from cowrieprocessor.cli.summary import format_table
from cowrieprocessor.db.engine import DEFAULT_DATABASE_URL
from cowrieprocessor.status_emitter import StatusEmitter

SECRET_KEY = "gn-unit-secret-0042"


def test_the_package_exports_main() -> None:
    assert cli.__all__ == ["main"]
    assert callable(cli.main)


def test_enrich_defaults_without_environment() -> None:
    args = parse_args(["enrich", "cowrie.json"], {})
    assert args.inputs == ["cowrie.json"]
    assert args.database_url == DEFAULT_DATABASE_URL
    assert args.batch_size == DEFAULT_BATCH_SIZE == 500
    assert (args.cymru, args.cymru_host, args.cymru_port) == (True, "whois.cymru.com", 43)
    assert (args.greynoise, args.greynoise_key) == (False, None)
    assert (args.metrics_port, args.metrics_host, args.metrics_linger) == (None, "127.0.0.1", 0.0)
    assert (args.otlp_endpoint, args.console_telemetry, args.status_dir) == (None, False, None)
    assert (args.json_output, args.verbose, args.quiet) == (False, 0, False)


@pytest.mark.parametrize(
    ("variable", "value", "attribute", "expected"),
    [
        ("COWRIEPROCESSOR_DB", "sqlite:////var/lib/inv.sqlite", "database_url",
         "sqlite:////var/lib/inv.sqlite"),
        ("COWRIEPROCESSOR_MAXMIND_DIR", "/srv/geoip", "maxmind_dir", Path("/srv/geoip")),
        ("COWRIEPROCESSOR_CYMRU_HOST", "whois.mirror.example", "cymru_host",
         "whois.mirror.example"),
        ("COWRIEPROCESSOR_CYMRU_PORT", "4343", "cymru_port", 4343),
        ("GREYNOISE_API_KEY", SECRET_KEY, "greynoise_key", SECRET_KEY),
        ("COWRIEPROCESSOR_GREYNOISE_URL", "http://127.0.0.1:9", "greynoise_url",
         "http://127.0.0.1:9"),
        ("COWRIEPROCESSOR_GREYNOISE_DAILY_BUDGET", "1000", "greynoise_daily_budget", 1000),
    ],
    ids=[
        "db", "maxmind-dir", "cymru-host", "cymru-port", "greynoise-key", "greynoise-url",
        "greynoise-budget",
    ],
)  # fmt: skip
def test_environment_defaults(variable: str, value: str, attribute: str, expected: Any) -> None:
    assert getattr(parse_args(["enrich", "x"], {variable: value}), attribute) == expected


def test_an_option_wins_over_the_environment() -> None:
    environ = {"COWRIEPROCESSOR_DB": "sqlite:///env.sqlite", "COWRIEPROCESSOR_CYMRU_PORT": "4343"}
    args = parse_args(
        ["enrich", "x", "--db", "sqlite:///cli.sqlite", "--cymru-port", "43"], environ
    )
    assert (args.database_url, args.cymru_port) == ("sqlite:///cli.sqlite", 43)


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        ([], "required: COMMAND"),
        (["enrich"], "required: PATH"),
        (["enrich", "x", "--batch-size", "0"], "--batch-size"),
        (["enrich", "x", "--metrics-port", "70000"], "0-65535"),
        (["enrich", "x", "--metrics-linger", "-1"], "--metrics-linger"),
        (["enrich", "x", "--no-such-option"], "unrecognized arguments"),
        (["asn", "top", "--by", "bytes"], "invalid choice"),
        (["asn"], "required: COMMAND"),
        (["enrich", "x", "-v", "-q"], "cannot be used together"),
        (["enrich", "x", "--greynoise-daily-budget", "0"], "--greynoise-daily-budget"),
    ],
    ids=[
        "no-command", "no-path", "batch-size", "port", "linger", "unknown", "choice",
        "no-subcommand", "verbose-and-quiet", "greynoise-budget",
    ],
)  # fmt: skip
def test_bad_usage_exits_2_with_one_line(
    argv: list[str], fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert captured.err.startswith("cowrieprocessor: error: ")
    assert fragment in captured.err


def test_an_unusable_environment_value_is_bad_usage() -> None:
    with pytest.raises(UsageError, match="COWRIEPROCESSOR_CYMRU_PORT"):
        parse_args(["enrich", "x"], {"COWRIEPROCESSOR_CYMRU_PORT": "forty-three"})


def test_help_never_shows_the_greynoise_key(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GREYNOISE_API_KEY", SECRET_KEY)
    assert cli.main(["enrich", "--help"]) == 0
    shown = capsys.readouterr().out
    assert "--greynoise-key" in shown
    assert SECRET_KEY not in shown
    assert cli.main(["--version"]) == 0
    assert "cowrieprocessor" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "code", "fragment"),
    [
        (["enrich", "/no/such/cowrie.json"], 2, "no such file or directory"),
        (["asn", "show", "not-an-asn", "--db", "sqlite:////no/such.sqlite"], 2, "AS number"),
        (["ip", "show", "999.1.1.1", "--db", "sqlite:////no/such.sqlite"], 2, "not an IP"),
        (["asn", "top", "--db", "sqlite:////no/such/db.sqlite"], 1, "no database at"),
        (["enrich", "x", "--db", "mysql://u:p@h/db"], 2, "no such file"),
        (["status", "/no/such/dir"], 2, "does not exist"),
    ],
    ids=["missing-path", "bad-asn", "bad-ip", "missing-db", "path-before-db", "status"],
)
def test_failures_exit_with_their_code_and_one_line(
    argv: list[str], code: int, fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(argv) == code
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [captured.err.strip()]
    assert fragment in captured.err


def test_an_unsupported_database_is_bad_usage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "cowrie.json"
    log.write_text("")
    assert cli.main(["enrich", str(log), "--db", "mysql://user:topsecret@db/inv"]) == 2
    err = capsys.readouterr().err
    assert "unsupported database backend" in err
    assert "topsecret" not in err


def _tiny_log(path: Path) -> Path:
    events = [
        {"eventid": "cowrie.session.connect", "session": "a1", "src_ip": "10.0.0.5",
         "timestamp": "2024-01-01T00:00:00Z"},
        {"eventid": "cowrie.session.closed", "session": "a1", "src_ip": "10.0.0.5",
         "timestamp": "2024-01-01T00:00:05Z"},
    ]  # fmt: skip
    path.write_text("".join(json.dumps(event) + "\n" for event in events) + "{broken\n")
    return path


def test_json_output_is_the_only_thing_on_stdout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = _tiny_log(tmp_path / "cowrie.json")
    db = f"sqlite:///{tmp_path / 'inv.sqlite'}"
    code = cli.main(
        ["enrich", str(log), "--db", db, "--json", "--no-cymru",
         "--maxmind-dir", str(tmp_path / "no-maxmind")]
    )  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    summary = json.loads(captured.out)
    assert (summary["events"], summary["sessions"], summary["unique_ips"]) == (2, 1, 1)
    assert summary["bad_lines"] == 1
    assert summary["bad_line_examples"] == [f"{log}:3: invalid JSON (Expecting property name "
                                            "enclosed in double quotes)"]  # fmt: skip
    assert summary["database"] == db
    assert any("no MaxMind database" in warning for warning in summary["warnings"])
    assert "Summary" in captured.err
    assert "no MaxMind database" in captured.err


def test_status_renders_and_prints_raw_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    emitter = StatusEmitter(tmp_path, secrets=[SECRET_KEY])
    emitter.update(phase="enriching", ips_total=10, ips_processed=4, last_error=f"x {SECRET_KEY}")
    assert cli.main(["status", str(tmp_path)]) == 0
    rendered = capsys.readouterr().out
    assert "enriching" in rendered
    assert "4 / 10 IPs" in rendered
    assert cli.main(["status", str(tmp_path), "--json"]) == 0
    raw = json.loads(capsys.readouterr().out)
    assert raw["ips_processed"] == 4
    assert SECRET_KEY not in json.dumps(raw)


def test_an_invalid_status_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "enrichment.json").write_text("{half a file")
    assert cli.main(["status", str(tmp_path)]) == 2
    assert "not valid JSON" in capsys.readouterr().err


# -- progress and tables ----------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_progress_state_rate_and_eta() -> None:
    state = ProgressState(done=250, total=1000, elapsed_s=5.0, batch_cache_hits=3, batch_size=50)
    assert (state.rate, state.eta_s, state.fraction) == (50.0, 15.0, 0.25)
    assert ProgressState(done=0, total=10, elapsed_s=1.0).eta_s is None
    assert ProgressState(done=10, total=10, elapsed_s=1.0).eta_s == 0.0


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "--:--"), (0, "0:00"), (59.6, "1:00"), (3723, "1:02:03"), (float("inf"), "--:--")],
    ids=["unknown", "zero", "rounded", "hours", "infinite"],
)
def test_format_duration(seconds: float | None, text: str) -> None:
    assert format_duration(seconds) == text


def test_the_bar_is_redrawn_in_place_at_most_ten_times_a_second() -> None:
    stream, clock = io.StringIO(), FakeClock()
    progress = Progress(stream, tty=True, clock=clock)
    for done in range(1, 11):
        clock.now = done * 0.03
        progress.enriching(ProgressState(done, 10, clock.now, batch_cache_hits=1, batch_size=1))
    progress.finish_enriching()
    output = stream.getvalue()
    assert output.count("\r") == 4  # at 0.03, 0.15 and 0.27 (0.1 s apart at least), then the last
    assert output.endswith("\n")
    assert "10/10 IPs" in output
    assert "batch cache hits 1/1" in output


def test_without_a_terminal_progress_is_a_log_line_per_interval() -> None:
    stream, clock = io.StringIO(), FakeClock()
    progress = Progress(stream, tty=False, log_interval_s=10.0, clock=clock)
    for done in range(1, 31):
        clock.now = float(done)
        progress.enriching(ProgressState(done, 30, clock.now, batch_cache_hits=0, batch_size=1))
    progress.finish_enriching()
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue()
    assert [line.split()[2] for line in lines] == ["1/30", "11/30", "21/30", "30/30"]


def test_quiet_progress_writes_nothing() -> None:
    stream = io.StringIO()
    progress = Progress(stream, tty=True, enabled=False)
    progress.reading(10, 2, 0, final=True)
    progress.enriching(ProgressState(1, 1, 1.0))
    progress.finish_enriching()
    assert stream.getvalue() == ""


def test_tables_align_numbers_right_and_text_left() -> None:
    table = format_table(("ASN", "org", "IPs"), [("AS1", "Tiny", 5), ("AS64512", None, 1200)])
    assert table.splitlines() == [
        "ASN      org   IPs",
        "-------  ----  -----",
        "AS1      Tiny      5",
        "AS64512  -     1,200",
    ]


def test_the_greynoise_budget_reaches_the_client() -> None:
    from cowrieprocessor.cli.sources import SourceOptions, open_sources

    sources = open_sources(SourceOptions(cymru=False, greynoise=True, greynoise_daily_budget=250))
    try:
        assert sources.greynoise is not None
        assert sources.greynoise.get_remaining_quota() == 250
    finally:
        sources.close()
