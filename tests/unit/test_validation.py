from __future__ import annotations

import json
import math

import pytest

from functions.domain.errors import Unavailable
from functions.domain.ports import LoggedModelInfo, VersionInfo
from functions.domain.tags import TAG_STATUS, TAG_VERDICT
from functions.domain.validation import ValidationRequest, parse_metrics_file, verdict_record
from functions.models.events import ArtifactOrigin, ModelVersionValidated
from tests.builders import BUCKET
from tests.builders import ValidationWorld as World


def test_a_good_version_passes_and_the_verdict_is_tagged_and_emitted(tmp_path):
    # GIVEN a version with a good metric, a signature, requirements.txt and its data version
    world = World(tmp_path)
    request = world.version("1", accuracy=0.9)
    # WHEN validated (no champion yet)
    verdict = world.validator.validate(request)
    # THEN it passes; the comparison was skipped and says so
    assert verdict.status == "passed"
    compare = world.check("compare:champion:accuracy")
    assert (compare.passed, compare.skipped) == (True, True)
    assert "no version holds champion yet" in compare.message
    # AND the tags record status, reasons, policy identity and time
    tags = world.registry.get_version("churn", "1").tags
    assert tags[TAG_STATUS] == "passed"
    record = verdict_record(tags)
    assert record["reasons"] == "all checks passed"
    assert record["policy"] == "churn.yaml"
    assert len(record["policy_sha256"]) == 64
    assert record["validated_at"] == "2026-11-20T12:00:00+00:00"
    assert record["correlation_id"] == "corr-1"
    # AND in two writes, the status last
    [(_, _, written)] = world.registry.tag_writes
    assert list(written) == [TAG_VERDICT, TAG_STATUS]
    # AND the event carries every check with observed value, threshold and source
    [event] = world.events.published
    assert isinstance(event, ModelVersionValidated)
    assert (event.status, event.reasons, event.correlation_id) == ("passed", [], "corr-1")
    assert event.policy.startswith("churn.yaml@sha256:")
    metric = world.check("metric:accuracy:min")
    assert (metric.observed, metric.threshold, metric.source, metric.passed) == (0.9, 0.8, "run", True)


def test_a_version_below_the_threshold_fails_with_the_reason(tmp_path):
    world = World(tmp_path)
    verdict = world.validator.validate(world.version("1", accuracy=0.7))
    assert verdict.status == "failed"
    assert verdict.reasons == ["accuracy 0.7 is below the minimum 0.8"]
    assert world.registry.get_version("churn", "1").tags[TAG_STATUS] == "failed"


def test_a_version_that_does_not_beat_the_champion_fails(tmp_path):
    # GIVEN version 1 holds champion with accuracy 0.90
    world = World(tmp_path)
    world.version("1", accuracy=0.90)
    world.registry.aliases[("churn", "champion")] = "1"
    # WHEN version 2 with 0.905 (less than the 0.01 minimum improvement) is validated
    verdict = world.validator.validate(world.version("2", accuracy=0.905))
    # THEN it fails on the comparison, naming the champion
    assert verdict.status == "failed"
    compare = world.check("compare:champion:accuracy")
    assert (compare.observed, compare.threshold) == (0.905, 0.9)
    assert "does not beat champion v1" in compare.message


def test_a_version_without_environment_files_fails(tmp_path):
    world = World(tmp_path)
    verdict = world.validator.validate(world.version("1", accuracy=0.9, files=("model.skops",)))
    assert verdict.status == "failed"
    assert any("no environment file" in reason for reason in verdict.reasons)


def test_a_missing_lineage_tag_fails(tmp_path):
    world = World(tmp_path)
    verdict = world.validator.validate(world.version("1", accuracy=0.9, tags={"other": "x"}))
    assert verdict.reasons == ["run tag data.version is missing"]


@pytest.mark.parametrize(
    ("policy", "run_reads"),
    [
        ("finite_metrics: false\nartifacts: {environment: true}\n", 0),
        ("artifacts: {environment: true}\n", 1),  # every metric must be finite, so the run's are read
        ("finite_metrics: false\nlineage: {run_tags: [data.version]}\n", 1),
        ("finite_metrics: false\nmetrics: {accuracy: {min: 0.5}}\n", 1),
    ],
)
def test_the_run_is_read_only_when_the_policy_checks_it(tmp_path, policy, run_reads):
    # GIVEN a policy that checks only files, the metrics' finiteness, a run tag, or a metric
    world = World(tmp_path, policy=policy)
    # WHEN a version is validated
    verdict = world.validator.validate(world.version("1", accuracy=0.9))
    # THEN it passes, and the registry was asked for the run only when a check needs it
    assert verdict.status == "passed"
    assert len(world.registry.run_reads) == run_reads


def test_validating_twice_changes_nothing_more(tmp_path):
    # GIVEN a validated version
    world = World(tmp_path)
    request = world.version("1", accuracy=0.9)
    world.validator.validate(request)
    writes = list(world.registry.tag_writes)
    # WHEN it is validated again with the same policy and evidence
    verdict = world.validator.validate(request)
    # THEN no tag is written again, and the event is emitted again (at-least-once delivery)
    assert verdict.changed is False
    assert world.registry.tag_writes == writes
    assert len(world.events.published) == 2


def test_status_tag_is_written_last(tmp_path):
    world = World(tmp_path)
    world.validator.validate(world.version("1", accuracy=0.9))
    [(_, _, tags)] = world.registry.tag_writes
    assert list(tags)[-1] == TAG_STATUS


def test_metric_sources_in_order_logged_model_then_run_then_metrics_file(tmp_path):
    # GIVEN accuracy on the logged model and the run, and f1 only in metrics.json
    world = World(tmp_path, policy="metrics: {accuracy: {min: 0.5}, f1: {min: 0.5}, auc: {min: 0.5}}\n")
    request = world.version("1", accuracy=0.6, files=("requirements.txt", "metrics.json"))
    world.store.put(BUCKET, "models/churn/1/metrics.json", json.dumps({"f1": 0.77, "accuracy": 0.1}).encode())
    world.registry.logged_models["m-1"] = LoggedModelInfo("m-1", "1", "READY", metrics={"auc": 0.88, "accuracy": 0.95})
    version = world.registry.versions[0]
    world.registry.versions[0] = VersionInfo(version.model_name, "1", version.source, version.run_id, model_id="m-1")
    # WHEN validated
    world.validator.validate(request)
    # THEN each value comes from the first source that has it, and the verdict says which
    assert (world.check("metric:accuracy:min").observed, world.check("metric:accuracy:min").source) == (
        0.95,
        "logged_model",
    )
    assert world.check("metric:auc:min").source == "logged_model"
    assert (world.check("metric:f1:min").observed, world.check("metric:f1:min").source) == (0.77, "metrics.json")


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"{not json", "metrics.json is not valid JSON"),
        (b"[1, 2]", "metrics.json is not a JSON object"),
        (b'{"accuracy": "high", "f1": true}', "metrics.json holds non-numbers for: accuracy, f1"),
    ],
)
def test_a_bad_metrics_file_is_a_failed_verdict_not_a_crash(tmp_path, content, reason):
    world = World(tmp_path, policy="artifacts: {environment: false}\n")
    request = world.version("1", accuracy=None, files=("metrics.json",))
    world.store.put(BUCKET, "models/churn/1/metrics.json", content)
    verdict = world.validator.validate(request)
    assert verdict.status == "failed"
    assert any(r.startswith(reason) for r in verdict.reasons)


def test_a_huge_metrics_file_is_refused_with_a_reason(tmp_path):
    world = World(tmp_path, policy="artifacts: {environment: false}\n")
    request = world.version("1", accuracy=None, files=("metrics.json",))
    world.store.put(BUCKET, "models/churn/1/metrics.json", b"{" + b" " * (2 * 1024 * 1024) + b"}")
    verdict = world.validator.validate(request)
    assert verdict.reasons == ["metrics.json is larger than 1048576 bytes"]


def test_nan_in_metrics_file_fails_and_the_event_stays_valid_json(tmp_path):
    world = World(tmp_path, policy="metrics: {accuracy: {min: 0.5}}\nartifacts: {environment: false}\n")
    request = world.version("1", accuracy=None, files=("metrics.json",))
    world.store.put(BUCKET, "models/churn/1/metrics.json", b'{"accuracy": NaN}')
    verdict = world.validator.validate(request)
    assert verdict.status == "failed"
    payload = json.loads(world.events.published[-1].model_dump_json())
    assert payload["checks"][0]["observed"] == "nan"


def test_a_deleted_version_is_skipped(tmp_path):
    world = World(tmp_path)
    verdict = world.validator.validate(ValidationRequest("churn", "9", "c"))
    assert verdict.status == "skipped"
    assert world.events.published == []


def test_the_model_directory_comes_from_the_upload_when_known(tmp_path):
    # GIVEN a version whose source is not in the bucket (log_model's models:/ source) but whose upload is known
    world = World(tmp_path, policy="artifacts: {signature: true, environment: true}\n")
    world.version("1", accuracy=0.9)
    world.registry.versions[0] = VersionInfo("churn", "1", "models:/m-unknown", None)
    origin = ArtifactOrigin(bucket=BUCKET, key="models/churn/1/MLmodel")
    # WHEN validated with the upload's location
    verdict = world.validator.validate(ValidationRequest("churn", "1", "c", artifact=origin))
    # THEN the files are found there
    assert verdict.status == "passed"


def test_a_logged_model_source_resolves_to_its_artifact_location(tmp_path):
    world = World(tmp_path, policy="artifacts: {signature: true, environment: true}\n")
    world.version("1", accuracy=0.9)
    world.registry.versions[0] = VersionInfo("churn", "1", "models:/m-abc", None)
    world.registry.logged_models["m-abc"] = LoggedModelInfo(
        "m-abc", "1", "READY", artifact_location=f"s3://{BUCKET}/models/churn/1"
    )
    assert world.validator.validate(ValidationRequest("churn", "1", "c")).status == "passed"


def test_artifacts_outside_the_bucket_fail_the_artifact_checks(tmp_path):
    world = World(tmp_path, policy="artifacts: {signature: true, environment: true}\n")
    world.version("1", accuracy=0.9)
    world.registry.versions[0] = VersionInfo("churn", "1", "s3://elsewhere/models/churn/1", None)
    verdict = world.validator.validate(ValidationRequest("churn", "1", "c"))
    assert verdict.status == "failed"
    assert "MLmodel could not be read: signature unknown" in verdict.reasons


def test_a_registry_outage_is_raised_for_retry(tmp_path):
    world = World(tmp_path)
    request = world.version("1", accuracy=0.9)
    world.registry.down = True
    with pytest.raises(Unavailable, match="MLflow is down"):
        world.validator.validate(request)


@pytest.mark.parametrize(
    ("content", "values"),
    [(b'{"a": 1, "b": 2.5}', {"a": 1.0, "b": 2.5}), (b"{}", {})],
)
def test_parse_metrics_file(content, values):
    assert parse_metrics_file(content) == (values, None)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_a_non_finite_metric_fails_the_verdict_even_when_the_policy_names_no_metric(tmp_path, value):
    # GIVEN a policy that names no metric at all (the world's default policy) and a run that logged a NaN loss
    world = World(tmp_path, policy="artifacts: {environment: true}\n")
    # WHEN its version is validated
    verdict = world.validator.validate(world.version("1", accuracy=0.9, metrics={"loss": value}))
    # THEN it fails, naming the metric, its value and where it was logged
    assert verdict.status == "failed"
    assert verdict.reasons == [f"metric loss is {value} in the run (not a finite number: a diverged run?)"]
    assert world.check("finite:loss:run").passed is False


def test_a_non_finite_value_in_metrics_json_fails_even_when_the_run_has_a_finite_one(tmp_path):
    # GIVEN a run with a finite accuracy and a metrics.json beside the MLmodel whose accuracy is NaN
    world = World(tmp_path, policy="artifacts: {environment: true}\n")
    request = world.version("1", accuracy=0.9)
    world.store.put(BUCKET, "models/churn/1/metrics.json", b'{"accuracy": NaN}')
    # WHEN validated
    verdict = world.validator.validate(request)
    # THEN the NaN fails it, though the first source (the run) is finite
    assert verdict.reasons == ["metric accuracy is nan in the metrics.json (not a finite number: a diverged run?)"]


def test_a_policy_may_opt_out_of_the_finite_metrics_rule(tmp_path):
    # GIVEN a policy that turns the rule off
    world = World(tmp_path, policy="finite_metrics: false\nartifacts: {environment: true}\n")
    # WHEN a version with a NaN metric is validated
    verdict = world.validator.validate(world.version("1", accuracy=0.9, metrics={"loss": math.nan}))
    # THEN it passes: only the listed metrics (none) are checked
    assert verdict.status == "passed"


def test_a_listed_metric_that_is_not_finite_fails_once(tmp_path):
    # GIVEN a policy that lists accuracy, and a version whose accuracy is NaN
    world = World(tmp_path, policy="metrics: {accuracy: {min: 0.5}}\nartifacts: {environment: true}\n")
    # WHEN validated
    verdict = world.validator.validate(world.version("1", accuracy=math.nan))
    # THEN the metric's own check says so, and the finite rule does not repeat it
    assert verdict.reasons == ["metric accuracy is nan (not a finite number)"]
