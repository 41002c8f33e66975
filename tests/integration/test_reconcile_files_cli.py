"""`returnsync reconcile-files` end to end: outputs, options and exit codes."""

from __future__ import annotations

import csv
import io
import json

import pytest
import typer
from openpyxl import load_workbook
from typer.testing import CliRunner

from returnsync.recon import builders, cli, generate
from returnsync.recon.builders import line
from returnsync.recon.findings import FindingKind

AS_OF = "2026-10-31T23:59:59"


@pytest.fixture(scope="module")
def app():
    """A bare Typer app with the command registered, as the main CLI does."""
    application = typer.Typer()
    cli.register(application)

    @application.callback()
    def main() -> None:
        """Test shell."""

    return application


def run(app, *args):
    """Invoke the command; stdout and stderr come back separately."""
    return CliRunner().invoke(app, ["reconcile-files", *map(str, args)])


def options(data):
    """The file options for a generated dataset or written snapshot."""
    found = [
        "--returns",
        data.returns,
        "--credits",
        data.credits,
        "--stock",
        data.stock,
        "--refunds",
        data.refunds,
    ]
    return [*found, "--sku-map", data.sku_map] if data.sku_map else found


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """A generated dataset with every kind of gap planted twice."""
    folder = tmp_path_factory.mktemp("cli")
    return generate.generate(folder, lines=600, seed=3, plant=dict.fromkeys(FindingKind, 2))


def test_json_lists_the_planted_gaps_and_exits_1(app, planted):
    """High-severity findings exit 1; the JSON holds exactly the planted findings."""
    result = run(app, *options(planted), "--as-of", AS_OF, "--format", "json")
    assert result.exit_code == 1, result.stderr
    document = json.loads(result.stdout)
    keys = {(f["tenant"], f["kind"], f["return_ref"], f["line_id"]) for f in document["findings"]}
    assert keys == {(t, k.value, r, line_id) for t, k, r, line_id in planted.expected}
    assert document["summary"] == {kind.value: 2 for kind in FindingKind}


def test_clean_data_exits_0(app, tmp_path):
    """No findings of severity high or above: exit 0, an empty findings list."""
    clean = generate.generate(tmp_path, lines=200, seed=5)
    result = run(app, *options(clean), "--as-of", AS_OF, "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {"findings": [], "summary": {}}


def test_csv_and_xlsx_are_written_to_out(app, planted, tmp_path):
    """--out takes the report; xlsx has a findings sheet and a summary sheet."""
    out = tmp_path / "findings.csv"
    run(app, *options(planted), "--as-of", AS_OF, "--format", "csv", "--out", out)
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert len(rows) == len(planted.expected)
    book_path = tmp_path / "findings.xlsx"
    result = run(app, *options(planted), "--as-of", AS_OF, "--format", "xlsx", "--out", book_path)
    assert result.exit_code == 1
    assert load_workbook(book_path, read_only=True).sheetnames == ["findings", "summary"]


def test_xlsx_needs_out(app, planted):
    """A workbook cannot go to stdout: exit 2 and say why."""
    result = run(app, *options(planted), "--as-of", AS_OF, "--format", "xlsx")
    assert result.exit_code == 2
    assert "--out is required" in result.stderr


def test_the_table_is_the_default(app, planted):
    """Without --format the findings print as a table with a summary."""
    result = run(app, *options(planted), "--as-of", AS_OF)
    assert result.exit_code == 1
    assert "webhook_gap" in result.stdout
    assert "Summary" in result.stdout


def test_bad_rows_are_named_by_file_and_line_and_exit_2(app, tmp_path):
    """A bad row is listed on stderr as file:line: reason; findings still go to stdout."""
    data = builders.write_files(
        builders.snapshot(*builders.clean_return("R1", ("S", 1, "1.00"))), tmp_path
    )
    with data.returns.open("a", encoding="utf-8") as handle:
        handle.write("acme,R2,O2,R2-1,S,-3,0,,0.00,GBP,,,\n")
    result = run(app, *options(data), "--as-of", AS_OF, "--format", "json")
    assert result.exit_code == 2
    assert f"{data.returns}:3: quantity is negative" in result.stderr
    assert json.loads(result.stdout)["findings"] == []


def test_a_file_missing_a_column_exits_2_naming_it(app, tmp_path):
    """The header check fails before any work: file, line 1, the missing column."""
    data = builders.write_files(builders.snapshot(line()), tmp_path)
    text = data.stock.read_text(encoding="utf-8").replace("stock_code", "item")
    data.stock.write_text(text, encoding="utf-8")
    result = run(app, *options(data), "--as-of", AS_OF)
    assert result.exit_code == 2
    assert f"{data.stock}:1: missing column(s): stock_code" in result.stderr


def test_sla_hours_and_policy_options_move_the_deadline(app, tmp_path):
    """Received 60 hours ago with nothing downstream: late at 48 h, not at 72 h."""
    data = builders.write_files(builders.snapshot(line(received_hours_ago=60)), tmp_path)
    assert run(app, *options(data), "--as-of", AS_OF).exit_code == 1
    assert run(app, *options(data), "--as-of", AS_OF, "--sla-hours", 72).exit_code == 0
    policy = tmp_path / "policy.toml"
    policy.write_text("[tenants.acme]\nreceived_to_credited_hours = 72\n", encoding="utf-8")
    assert run(app, *options(data), "--as-of", AS_OF, "--policy", policy).exit_code == 0


def test_tolerance_option_turns_a_mismatch_into_rounding(app, tmp_path):
    """A 3p line difference is a mismatch at 0.01 and informational at 0.05."""
    records = [
        line(),
        builders.credit(gross="9.97"),
        builders.move(),
        builders.refund(amount="9.97"),
    ]
    data = builders.write_files(builders.snapshot(*records), tmp_path)
    strict = run(app, *options(data), "--as-of", AS_OF, "--format", "json")
    loose = run(app, *options(data), "--as-of", AS_OF, "--format", "json", "--tolerance", "0.05")
    assert json.loads(strict.stdout)["summary"] == {"amount_mismatch": 1}
    assert (loose.exit_code, json.loads(loose.stdout)["summary"]) == (0, {"rounding_difference": 1})


def test_a_column_mapping_file_adapts_export_headers(app, tmp_path):
    """`--columns` maps `Return ID` to return_ref."""
    data = builders.write_files(
        builders.snapshot(*builders.clean_return("R1", ("S", 1, "1.00"))), tmp_path
    )
    text = data.returns.read_text(encoding="utf-8").replace("return_ref", "Return ID", 1)
    data.returns.write_text(text, encoding="utf-8")
    mapping = tmp_path / "columns.toml"
    mapping.write_text('[returns]\nreturn_ref = "Return ID"\n', encoding="utf-8")
    result = run(app, *options(data), "--as-of", AS_OF, "--columns", mapping, "--format", "json")
    assert (result.exit_code, json.loads(result.stdout)["findings"]) == (0, [])


def test_a_bad_as_of_or_missing_file_exits_2(app, planted, tmp_path):
    """Usage errors are exit 2 like bad input."""
    assert run(app, *options(planted), "--as-of", "yesterday").exit_code == 2
    missing = [*options(planted)]
    missing[1] = tmp_path / "nope.csv"
    assert run(app, *missing).exit_code == 2
