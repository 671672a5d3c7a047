from __future__ import annotations

import pytest

from functions.domain.errors import Rejected
from functions.domain.mlmodel import parse_mlmodel
from tests.conftest import EVENTS


def test_parse_a_real_sklearn_mlmodel():
    # GIVEN the MLmodel MLflow 3.17 writes for a scikit-learn model
    content = (EVENTS / "sklearn_MLmodel.yaml").read_bytes()
    # WHEN it is parsed
    mlmodel = parse_mlmodel(content)
    # THEN the flavors, the signature and every file the flavors name are known
    assert set(mlmodel.flavors) == {"python_function", "sklearn"}
    assert mlmodel.has_signature
    assert mlmodel.referenced_paths == {"model.skops", "conda.yaml", "python_env.yaml"}
    assert mlmodel.model_id is None
    assert mlmodel.run_id is None


def test_parse_reads_run_and_model_ids():
    content = b"flavors:\n  python_function: {loader_module: m}\nrun_id: abc\nmodel_id: m-1\n"
    mlmodel = parse_mlmodel(content)
    assert (mlmodel.run_id, mlmodel.model_id, mlmodel.has_signature) == ("abc", "m-1", False)


def test_paths_outside_the_model_directory_are_not_required():
    # GIVEN flavors naming an absolute path, a URI and a parent path
    content = (
        b"flavors:\n  f:\n    data: /etc/passwd\n    model_path: s3://x/y\n    code: ../up\n    pickled_model: ok.pkl\n"
    )
    # WHEN parsed
    # THEN only the relative path inside the model directory is required
    assert parse_mlmodel(content).referenced_paths == {"ok.pkl"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"   \n", "empty"),
        (b"\xff\xfe\x00", "not UTF-8"),
        (b"flavors: [unclosed", "not valid YAML"),
        (b"- a\n- b\n", "not a YAML mapping"),
        (b"just text", "not a YAML mapping"),
        (b"artifact_path: x\n", "no flavors"),
        (b"flavors: {}\n", "no flavors"),
        (b"flavors:\n  sklearn: 3\n", "map names to mappings"),
        (b"!!python/object/apply:os.system ['echo hi']\n", "not valid YAML"),
    ],
)
def test_malformed_mlmodel_is_rejected_with_a_reason(content, message):
    with pytest.raises(Rejected, match=message) as caught:
        parse_mlmodel(content)
    assert caught.value.reason == "malformed_mlmodel"


def test_yaml_bomb_is_refused_before_expansion():
    # GIVEN a "billion laughs" document built from anchors and aliases
    bomb = b'a: &a ["x","x","x","x","x","x","x","x","x"]\n'
    for level in "bcdefghi":
        previous = chr(ord(level) - 1)
        bomb += f"{level}: &{level} [*{previous},*{previous},*{previous},*{previous},*{previous}]\n".encode()
    bomb += b"flavors:\n  f: {data: *i}\n"
    # WHEN parsed
    # THEN it is refused for its aliases
    with pytest.raises(Rejected, match="aliases"):
        parse_mlmodel(bomb)
