"""Reading an MLmodel file safely, and the files its flavors say must exist.

MLmodel is YAML written by MLflow. It arrives from an untrusted bucket, so it is size-capped by the
caller, parsed with a safe loader that also refuses anchors and aliases (no "billion laughs"), and
checked for the shape MLflow writes: a mapping with at least one flavor.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import yaml

from functions.domain.errors import Rejected

# Flavor fields that name a file or folder beside MLmodel (written by MLflow's built-in flavors).
_PATH_FIELDS = frozenset(
    {
        "pickled_model",
        "model_path",
        "model_data",
        "data",
        "python_model",
        "code",
        "saved_model_dir",
        "model_file",
        "conda",
        "virtualenv",
    }
)


class _NoAliasSafeLoader(yaml.SafeLoader):
    """SafeLoader that refuses anchors and aliases, which MLflow never writes."""

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            raise Rejected("malformed_mlmodel", "MLmodel uses YAML aliases, which MLflow never writes")
        return super().compose_node(parent, index)


@dataclass(frozen=True)
class MLmodel:
    flavors: dict[str, dict]
    run_id: str | None = None
    model_id: str | None = None
    has_signature: bool = False
    has_full_signature: bool = False
    """A signature with both inputs and outputs (what Unity Catalog requires)."""
    referenced_paths: frozenset[str] = field(default_factory=frozenset)


def parse_mlmodel(content: bytes) -> MLmodel:
    """Parse MLmodel bytes; raises `Rejected` with a clear reason for anything MLflow would not write."""
    if not content.strip():
        raise Rejected("malformed_mlmodel", "MLmodel is empty")
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        raise Rejected("malformed_mlmodel", "MLmodel is not UTF-8 text") from None
    try:
        document = yaml.load(text, Loader=_NoAliasSafeLoader)  # nosec B506: a SafeLoader subclass that also refuses aliases
    except yaml.YAMLError as error:
        raise Rejected("malformed_mlmodel", f"MLmodel is not valid YAML: {_first_line(error)}") from None
    if not isinstance(document, dict):
        raise Rejected("malformed_mlmodel", "MLmodel is not a YAML mapping")
    flavors = document.get("flavors")
    if not isinstance(flavors, dict) or not flavors:
        raise Rejected("malformed_mlmodel", "MLmodel has no flavors")
    if not all(isinstance(name, str) and isinstance(conf, dict) for name, conf in flavors.items()):
        raise Rejected("malformed_mlmodel", "MLmodel flavors must map names to mappings")
    return MLmodel(
        flavors=flavors,
        run_id=_optional_str(document.get("run_id")),
        model_id=_optional_str(document.get("model_id")),
        has_signature=isinstance(document.get("signature"), dict),
        has_full_signature=_full_signature(document.get("signature")),
        referenced_paths=frozenset(_referenced_paths(flavors)),
    )


def _referenced_paths(flavors: dict[str, dict]) -> set[str]:
    paths: set[str] = set()

    def visit(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in _PATH_FIELDS and isinstance(value, str) and _is_relative_path(value):
                    paths.add(value.strip("/"))
                else:
                    visit(value)

    visit(flavors)
    return paths


def _is_relative_path(value: str) -> bool:
    parts = value.strip("/").split("/")
    return bool(value) and not value.startswith("/") and "://" not in value and ".." not in parts


def _full_signature(signature: object) -> bool:
    return isinstance(signature, dict) and bool(signature.get("inputs")) and bool(signature.get("outputs"))


def _optional_str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _first_line(error: Exception) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__
