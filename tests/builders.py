"""Builders the unit tests share: use cases wired to the fakes (`tests/fakes.py`), the events and the Lambda context
the handlers are given, and a reader of the metrics they print."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from functions.domain.aliases import AliasKeeper
from functions.domain.ladder import Climber
from functions.domain.policy import load_policies
from functions.domain.ports import ModelProofs, RunInfo, VersionInfo
from functions.domain.registration import Registrar, RegistrationConfig, UploadedObject
from functions.domain.tags import DEFAULT_MODEL_NAME_TAG, IDENTITY_TAG, TAG_STATUS, TAG_VERDICT, pending_tag
from functions.domain.validation import EvidenceReader, ValidationRequest, Validator
from functions.models.events import EnvironmentPromotionRequested, ModelAliasMoved, ModelVersionValidated
from tests.conftest import EVENTS, load_event
from tests.fakes import FakeArtifactStore, FakeEventPublisher, FakeRegistry

BUCKET = "artifact-bucket"
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
MODEL_ID = "m-6c73e1d770c246b5a23915943ef5a86e"
RUN_ID = "0123456789abcdef0123456789abcdef"
MLMODEL = (EVENTS / "sklearn_MLmodel.yaml").read_bytes()
MODEL_FILES = ("model.skops", "conda.yaml", "python_env.yaml", "requirements.txt")


def policies_folder(tmp_path: Path, **policies: str) -> Path:
    """A policies directory holding `<model>.yaml` for each keyword (`default` is the default policy)."""
    folder = tmp_path / "policies"
    folder.mkdir()
    for model, text in policies.items():
        (folder / f"{model}.yaml").write_text(text)
    return folder


# --- registration -----------------------------------------------------------------------------------


class RegistrationWorld:
    """A registrar wired to fakes, plus helpers to put model directories into the fake bucket."""

    def __init__(self, *, unity_catalog: bool = False, **config) -> None:  # type: ignore[no-untyped-def]
        self.registry = FakeRegistry(unity_catalog=unity_catalog)
        self.store = FakeArtifactStore()
        self.events = FakeEventPublisher()
        self.registrar = Registrar(
            RegistrationConfig(
                bucket=BUCKET, artifact_root_prefix="mlflow", model_name_tag=DEFAULT_MODEL_NAME_TAG, **config
            ),
            registry=self.registry,
            artifacts=self.store,
            events=self.events,
            now=lambda: NOW,
        )

    def upload_model(self, model_dir: str, *, mlmodel: bytes = MLMODEL, files=MODEL_FILES) -> UploadedObject:  # type: ignore[no-untyped-def]
        self.store.put(BUCKET, f"{model_dir}/MLmodel", mlmodel)
        for name in files:
            self.store.put(BUCKET, f"{model_dir}/{name}")
        return UploadedObject(
            bucket=BUCKET,
            key=f"{model_dir}/MLmodel",
            etag="etag-1",
            version_id="v1",
            size=len(mlmodel),
            uploaded_at=NOW - timedelta(seconds=5),
        )


# --- validation -------------------------------------------------------------------------------------

CHURN_POLICY = """
metrics:
  accuracy: {min: 0.8}
compare: {alias: champion, metric: accuracy, min_improvement: 0.01}
artifacts: {signature: true, environment: true}
lineage: {run_tags: [data.version]}
"""


class ValidationWorld:
    def __init__(self, tmp_path: Path, policy: str = CHURN_POLICY, proofs: ModelProofs | None = None) -> None:
        folder = policies_folder(tmp_path, default="artifacts: {environment: true}\n", churn=policy)
        self.registry = FakeRegistry()
        self.store = FakeArtifactStore()
        self.events = FakeEventPublisher()
        self.validator = Validator(
            load_policies(folder),
            bucket=BUCKET,
            registry=self.registry,
            artifacts=self.store,
            events=self.events,
            now=lambda: NOW,
            proofs=proofs,
        )

    def version(  # type: ignore[no-untyped-def]
        self, number: str, *, accuracy: float | None, files=("requirements.txt", "model.skops"), tags=None, metrics=None
    ):
        model_dir = f"models/churn/{number}"
        self.store.put(BUCKET, f"{model_dir}/MLmodel", MLMODEL)
        for name in files:
            self.store.put(BUCKET, f"{model_dir}/{name}")
        run_id = f"{RUN_ID[:-2]}{int(number):02d}"
        metrics = dict(metrics or {}) | ({} if accuracy is None else {"accuracy": accuracy})
        self.registry.runs[run_id] = RunInfo(run_id, "1", tags or {"data.version": "7"}, metrics)
        self.registry.versions.append(VersionInfo("churn", number, f"s3://{BUCKET}/{model_dir}", run_id))
        return ValidationRequest("churn", number, f"corr-{number}")

    def check(self, name: str):  # type: ignore[no-untyped-def]
        event = self.events.published[-1]
        return next(c for c in event.checks if c.name == name)


# --- aliases ----------------------------------------------------------------------------------------

ALIAS_POLICY = """
metrics: {accuracy: {min: 0.5}}
compare: {alias: champion, metric: accuracy}
promotion:
  aliases: {challenger: always, champion: auto}
"""


class AliasWorld:
    def __init__(self, tmp_path: Path, policy: str = ALIAS_POLICY) -> None:
        folder = policies_folder(tmp_path, default="{}\n", churn=policy)
        self.registry = FakeRegistry()
        self.events = FakeEventPublisher()
        reader = EvidenceReader(bucket="b", registry=self.registry, artifacts=FakeArtifactStore())
        self.keeper = AliasKeeper(
            load_policies(folder), registry=self.registry, reader=reader, events=self.events, now=lambda: NOW
        )

    def version(self, number: str, accuracy: float | None, status: str = "passed") -> ModelVersionValidated:
        run = f"run{number}"
        self.registry.runs[run] = RunInfo(run, "1", {}, {} if accuracy is None else {"accuracy": accuracy})
        tags = {TAG_STATUS: status, TAG_VERDICT: json.dumps({"validated_at": f"t{number}"})} if status else {}
        self.registry.versions.append(VersionInfo("churn", number, f"s3://b/models/churn/{number}", run, tags))
        return ModelVersionValidated(
            model_name="churn",
            version=number,
            source_uri="s",
            correlation_id=f"c{number}",
            status="passed" if status == "passed" else "failed",
        )

    def holder(self, alias: str) -> str | None:
        return self.registry.aliases.get(("churn", alias))

    def moves(self) -> list[tuple[str, str, str | None]]:
        return [
            (e.alias, e.version, e.previous_version) for e in self.events.published if isinstance(e, ModelAliasMoved)
        ]


# --- handlers -----------------------------------------------------------------------------------------


@dataclass
class FakeContext:
    function_name: str = "register"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:register"
    aws_request_id: str = "req-1"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def sqs_event(*bodies: str, receive_count: int = 1, attributes: dict | None = None) -> dict:
    return {
        "Records": [
            {
                "messageId": f"msg-{index}",
                "receiptHandle": f"rh-{index}",
                "body": body,
                "attributes": {"ApproximateReceiveCount": str(receive_count), "SentTimestamp": "1"},
                "messageAttributes": attributes or {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:register",
                "awsRegion": "us-east-1",
            }
            for index, body in enumerate(bodies)
        ]
    }


def s3_event(shape: str, key: str) -> str:
    event = load_event(f"s3_object_created_{shape}.json")
    event["detail"]["object"]["key"] = key
    return json.dumps(event)


def emitted_metrics(output: str) -> dict[str, list]:
    """Metric name -> dimension sets, from the EMF records the handler printed."""
    found: dict[str, list] = {}
    for line in output.splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if "_aws" not in record:
            continue
        for directive in record["_aws"]["CloudWatchMetrics"]:
            dims = {d: record[d] for group in directive["Dimensions"] for d in group if d != "service"}
            for metric in directive["Metrics"]:
                found.setdefault(metric["Name"], []).append(dims)
    return found


LADDER = """\
promotion:
  aliases: {challenger: always}
ladder:
  environments:
    - {name: dev, model: churn, aliases: [challenger]}
    - {name: staging, model: churn-staging, aliases: [challenger]}
    - name: prod
      model: churn-prod
      aliases: [champion]
      requires: {approval: true, min_hours: 24}
"""
"""dev -> staging -> prod in one registry, prod on approval after 24 hours (`tests/unit/test_ladder.py`)."""


class LadderWorld:
    def __init__(self, tmp_path: Path, policy: str = LADDER) -> None:
        self.policies = load_policies(policies_folder(tmp_path, default="{}\n", churn=policy))
        self.registry = FakeRegistry()
        self.events = FakeEventPublisher()
        self.now = NOW
        reader = EvidenceReader(bucket="b", registry=self.registry, artifacts=FakeArtifactStore())
        self.keeper = keeper = AliasKeeper(
            self.policies, registry=self.registry, reader=reader, events=self.events, now=self.clock
        )
        self.climber = Climber(self.policies, registry=self.registry, keeper=keeper, events=self.events, now=self.clock)
        self.requests = 0

    def clock(self):  # type: ignore[no-untyped-def]
        return self.now

    def upload(self, number: str = "1", status: str = "passed") -> VersionInfo:
        """A version of the dev model as the register and validate routes leave it (passed at NOW)."""
        tags = {
            IDENTITY_TAG: f"s3://b/models/churn/{number}/MLmodel",
            TAG_VERDICT: json.dumps({"validated_at": NOW.isoformat(timespec="seconds"), "reasons": "r"}),
            TAG_STATUS: status,
            pending_tag("champion"): f"{number}@x",
        }
        version = VersionInfo("churn", number, f"s3://b/models/churn/{number}", "run1", tags)
        self.registry.versions.append(version)
        return version

    def promote(self, to: str, model: str = "churn", version: str = "1", approver: str | None = None):  # type: ignore[no-untyped-def]
        self.requests += 1
        return self.climber.promote(
            EnvironmentPromotionRequested(
                model_name=model,
                version=version,
                environment=to,
                requested_by="ci",
                approver=approver,
                correlation_id=f"c{self.requests}",
            )
        )

    def versions(self, model: str) -> list[VersionInfo]:
        return [v for v in self.registry.versions if v.model_name == model]
