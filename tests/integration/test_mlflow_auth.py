"""The register handler against a real MLflow server with authentication (`mlflow server --app-name basic-auth`).

The credentials come the way they do on AWS: a Secrets Manager secret (moto, the session sandbox's) read by
Powertools Parameters, turned into MLflow's variables by the adapter. The handler runs in a process of its own
(`tests/integration/invoke_handler.py`) with the Lambda environment `functions.settings.function_environment` builds;
its bucket, queues and secret are this module's own, so the sandbox's workers never see them. Everything that process
writes is captured and searched for the secret's values, which are unique to the run.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from functions.domain.tags import REGISTERED_BY, REGISTERED_BY_TAG
from functions.project import ROOT
from functions.routing import REGISTER
from functions.settings import function_environment
from sandbox import REGION
from sandbox.event_source import lambda_sqs_event, queue_arn
from tests.integration.invoke_handler import ANSWER_PREFIX
from tests.integration.mlflow_servers import AUTH_ADMIN, basic_auth_server

REPO_ROOT = ROOT
ADMIN = AUTH_ADMIN
USER = "registry-autopilot"


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A real MLflow server with basic auth on 127.0.0.1, an admin and a registrar user (their passwords unique)."""
    workdir = tmp_path_factory.mktemp("mlflow-auth")
    with basic_auth_server(workdir, "MLflow basic-auth server", users=[USER]) as server:
        yield {**server, "user_password": server[USER]}


@pytest.fixture
def lambda_env(sandbox, auth_server) -> dict:  # type: ignore[no-untyped-def]
    """This module's bucket and queues on the sandbox's moto, and `environment(secret)`: the register function's
    Lambda environment with that secret (stored in the sandbox's Secrets Manager)."""
    s3, sqs = sandbox.client("s3"), sandbox.client("sqs")
    bucket = f"auth-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    dead_letter_queue_url = sqs.create_queue(QueueName=f"{bucket}-dlq")["QueueUrl"]
    queue_url = sqs.create_queue(QueueName=bucket)["QueueUrl"]

    def environment(secret: dict) -> dict[str, str]:
        secret_arn = sandbox.client("secretsmanager").create_secret(
            Name=f"{bucket}-{uuid.uuid4().hex[:6]}", SecretString=json.dumps(secret)
        )["ARN"]
        inherited = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_TRACKING_", "POWERTOOLS_"))}
        return {
            **inherited,
            **function_environment(
                REGISTER,
                bucket=bucket,
                artifact_root_prefix="mlflow",
                event_bus_name=sandbox.event_bus,
                idempotency_table=sandbox.idempotency_table,
                queue_url=queue_url,
                dead_letter_queue_url=dead_letter_queue_url,
                tracking_uri=auth_server["url"],
                credentials_secret_arn=secret_arn,
            ),
            "AWS_LAMBDA_FUNCTION_NAME": "registry-autopilot-register",
            "AWS_REGION": REGION,
            "PYTHONPATH": str(REPO_ROOT),
        }

    return {"bucket": bucket, "queue_url": queue_url, "sqs": sqs, "s3": s3, "environment": environment}


def _invoke(event: dict, env: dict[str, str]) -> tuple[dict, str]:
    """Run the register handler in its own process; returns its answer and everything it wrote."""
    result = subprocess.run(
        [sys.executable, "-m", "tests.integration.invoke_handler", REGISTER.handler],
        input=json.dumps(event),
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    [answer] = [line for line in result.stdout.splitlines() if line.startswith(ANSWER_PREFIX)]
    return json.loads(answer.removeprefix(ANSWER_PREFIX)), output


def _deliver_upload(state: dict, sklearn_model_dir: Path, model_name: str) -> dict:
    """Upload the model, then deliver its Object Created event the way the event source mapping does."""
    s3, sqs, bucket = state["s3"], state["sqs"], state["bucket"]
    prefix = f"models/{model_name}/1/"
    for path in sorted(sklearn_model_dir.rglob("*"), key=lambda p: p.name == "MLmodel"):
        if path.is_file():
            s3.upload_file(str(path), bucket, f"{prefix}{path.relative_to(sklearn_model_dir).as_posix()}")
    head = s3.head_object(Bucket=bucket, Key=f"{prefix}MLmodel")
    event = {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "123456789012",
        "time": head["LastModified"].strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": {"key": f"{prefix}MLmodel", "size": head["ContentLength"], "etag": head["ETag"].strip('"')},
            "request-id": "R1",
            "requester": "123456789012",
            "source-ip-address": "127.0.0.1",
            "reason": "PutObject",
        },
    }
    sqs.send_message(QueueUrl=state["queue_url"], MessageBody=json.dumps(event))
    messages = sqs.receive_message(
        QueueUrl=state["queue_url"], MaxNumberOfMessages=1, WaitTimeSeconds=1, MessageSystemAttributeNames=["All"]
    )["Messages"]
    return lambda_sqs_event(messages, event_source_arn=queue_arn(state["queue_url"], region=REGION), region=REGION)


def _log_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_registration_works_with_the_right_credentials_and_never_logs_them(
    auth_server, lambda_env, sklearn_model_dir, model_name
):
    # GIVEN the registrar user's credentials in the secret, and an upload
    env = lambda_env["environment"]({"username": USER, "password": auth_server["user_password"]})
    event = _deliver_upload(lambda_env, sklearn_model_dir, model_name)

    # WHEN the real register handler runs
    answer, output = _invoke(event, env)

    # THEN the record succeeded and the version exists in the authenticated registry
    assert answer == {"batchItemFailures": []}
    assert any(line.get("message") == "model version registered" for line in _log_lines(output))
    [version] = _admin(auth_server).search_model_versions(f"name='{model_name}'")
    assert version.tags[REGISTERED_BY_TAG] == REGISTERED_BY
    # AND the server does enforce authentication (so the handler got in with the secret's credentials)
    with pytest.raises(MlflowException, match=r"(?i)401|unauthenticated|credentials"):
        _anonymous(auth_server).search_model_versions(f"name='{model_name}'")
    # AND the password is in nothing the function wrote
    assert auth_server["user_password"] not in output


def test_wrong_credentials_fail_with_a_clear_retryable_reason_and_lose_nothing(
    auth_server, lambda_env, sklearn_model_dir, model_name
):
    # GIVEN a secret with a wrong password (unique to this run) and an upload
    wrong = f"wrong-{secrets.token_hex(16)}"
    env = lambda_env["environment"]({"username": USER, "password": wrong})
    event = _deliver_upload(lambda_env, sklearn_model_dir, model_name)
    message_id = event["Records"][0]["messageId"]

    # WHEN the real register handler runs
    answer, output = _invoke(event, env)

    # THEN the record is reported failed (SQS retries it, then dead-letters it): nothing is lost or registered
    assert answer == {"batchItemFailures": [{"itemIdentifier": message_id}]}
    [failure] = [line for line in _log_lines(output) if line.get("message") == "failed: will be retried"]
    assert failure["reason"] == "registry_auth_failed"
    assert "MLflow refused" in failure["error"]
    assert "check the credentials secret" in failure["error"]
    # AND the reason is a metric dimension of its own
    assert [line for line in _log_lines(output) if "Retried" in line and line.get("reason") == "registry_auth_failed"]
    assert _admin(auth_server).search_model_versions(f"name='{model_name}'") == []
    # AND neither password is in anything the function wrote
    assert wrong not in output
    assert auth_server["user_password"] not in output


def _admin(auth_server: dict) -> MlflowClient:
    os.environ.update({"MLFLOW_TRACKING_USERNAME": ADMIN, "MLFLOW_TRACKING_PASSWORD": auth_server["admin_password"]})
    return MlflowClient(tracking_uri=auth_server["url"])


def _anonymous(auth_server: dict) -> MlflowClient:
    for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        os.environ.pop(name, None)
    return MlflowClient(tracking_uri=auth_server["url"])
