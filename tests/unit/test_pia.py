"""The privacy impact assessment generated from the example federation specs."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from fedstream.cli.main import app
from fedstream.cli.pia_cmd import to_html
from fedstream.privacy.dp_sgd import plan_noise
from services.compliance.pia import privacy_impact_assessment
from schemas.federation import parse_spec
from schemas.topics import ALL_TOPICS

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples" / "federations").glob("*.yaml"))
DP_SPEC = next(p for p in EXAMPLES if p.name == "hospitals-15-dp.yaml")
PLAIN_SPEC = next(p for p in EXAMPLES if p.name == "breast-cancer-3.yaml")


def spec_of(path: Path, **changes):
    spec = parse_spec(path.read_text())
    return spec.model_copy(update=changes) if changes else spec


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_gets_a_complete_assessment(path):
    spec = spec_of(path)
    doc = privacy_impact_assessment(spec)
    for heading in ("Purpose", "Participants and data categories", "Privacy and security mechanisms",
                    "Retention", "Data flows", "Residual risks", "Compliance regime", "sign-off"):
        assert heading in doc, heading
    assert spec.federation_id in doc and spec.project_name in doc
    assert all(f"| {p.participant_id} | {p.organisation} |" in doc for p in spec.participants)
    assert all(f"`{t.name}`" in doc for t in ALL_TOPICS)  # every data flow the platform has, from the topic table
    assert f"kept {spec.compliance.retention_days} days" in doc
    assert all(f"**{r.value.upper()}**" in doc for r in spec.compliance.regimes)
    assert doc == privacy_impact_assessment(spec)  # a pure function of the spec


def test_local_dp_states_the_budget_and_the_planned_noise():
    spec = spec_of(DP_SPEC)
    doc = privacy_impact_assessment(spec)
    assert "ε = 0.5, δ = 1e-05" in doc and "over all 30 planned rounds" in doc
    records = round(spec.data.patients_per_site * 0.75)  # each site keeps a quarter for its holdout
    sigma = plan_noise(records, spec.training.batch_size, spec.training.local_epochs, 30, 0.5, 1e-5)
    assert f"σ ≈ {sigma:.2f} for a site with {records} training records" in doc
    assert "| Membership inference / reconstruction of records from updates or the released model | low |" in doc


def test_a_smaller_budget_plans_more_noise():
    def planned(doc):
        return float(doc.split("σ ≈ ")[1].split(" ")[0])

    generous = privacy_impact_assessment(spec_of(DP_SPEC))
    strict_privacy = spec_of(DP_SPEC).privacy.model_copy(update={"epsilon": 0.2})
    strict = privacy_impact_assessment(spec_of(DP_SPEC, privacy=strict_privacy))
    assert "ε = 0.2" in strict and planned(strict) > planned(generous)


def test_a_fixed_noise_multiplier_and_central_dp_are_described():
    dp = spec_of(DP_SPEC).dp.model_copy(update={"noise_multiplier": 1.3, "central": True, "central_noise_multiplier": 0.8})
    doc = privacy_impact_assessment(spec_of(DP_SPEC, dp=dp))
    assert "fixed by the spec at σ = 1.3" in doc
    assert "Central differential privacy" in doc and "z = 0.8" in doc and "fixed clipping norm S = 1" in doc


def test_an_unreachable_budget_is_said_plainly():
    privacy = spec_of(DP_SPEC).privacy.model_copy(update={"epsilon": 1e-4})
    training = spec_of(DP_SPEC).training.model_copy(update={"rounds": 10_000})
    assert "**unreachable**" in privacy_impact_assessment(spec_of(DP_SPEC, privacy=privacy, training=training))


def test_no_differential_privacy_is_a_high_residual_risk():
    doc = privacy_impact_assessment(spec_of(PLAIN_SPEC))
    assert "**No differential privacy**" in doc
    assert "| Membership inference / reconstruction of records from updates or the released model | high |" in doc
    assert "quorum 3 of 3" in doc


def test_the_command_writes_markdown_or_html(tmp_path):
    runner = CliRunner()
    out = runner.invoke(app, ["pia", str(DP_SPEC), "--out", str(tmp_path / "pia.md")])
    assert out.exit_code == 0, out.output
    assert (tmp_path / "pia.md").read_text().startswith("# Privacy impact assessment: Cardiovascular")
    out = runner.invoke(app, ["pia", str(DP_SPEC), "--out", str(tmp_path / "pia.html")])
    page = (tmp_path / "pia.html").read_text()
    assert out.exit_code == 0 and page.startswith("<!doctype html>") and "<table>" in page
    bad = tmp_path / "bad.yaml"
    bad.write_text("federation_id: x\n")
    assert runner.invoke(app, ["pia", str(bad)]).exit_code == 1


def test_html_keeps_text_as_text():
    page = to_html("# <script>alert(1)</script>\n", "a <b>")
    assert "<script>" not in page and "&lt;script&gt;" in page and "a &lt;b&gt;" in page
