"""The sample corpus (`events/`): every event file is described in its README, loads as a recording, and the seed
stays small."""

from __future__ import annotations

from replay.recordings import load_recording
from tests.corpus import EVENTS, readme_rows


def test_every_sample_event_file_is_in_the_readme_table_and_the_other_way_round():
    # GIVEN the event files and the README's table
    files = {path.name for path in EVENTS.glob("*.json")}

    # WHEN they are compared
    # THEN each file has a row, and each row a file
    assert files == set(readme_rows())
    assert len(files) >= 14


def test_every_sample_event_file_loads_as_a_recording():
    # GIVEN the event files
    # WHEN each is loaded the way `replay local` loads it
    loaded = {path.name: load_recording(path) for path in EVENTS.glob("*.json")}

    # THEN each holds EventBridge events (duplicate delivery three, the control characters two)
    assert {name: len(events) for name, events in loaded.items() if len(events) != 1} == {
        "duplicate-delivery.json": 3,
        "hostile-control-characters.json": 2,
    }


def test_the_corpus_covers_validation_and_alias_moves():
    # GIVEN the README's table
    rows = readme_rows()

    # THEN a failing model, a promotion and a rollback have their own event files and promised outcomes
    assert rows["failing-model.json"] == "registered legacy v1, failed"
    assert rows["promotion.json"] == "champion v1"
    assert rows["rollback.json"] == "dead-lettered nothing_to_roll_back_to"


def test_the_seed_folder_stays_small():
    # GIVEN the seed objects
    size = sum(path.stat().st_size for path in (EVENTS / "seed").rglob("*") if path.is_file())

    # THEN they are well under a megabyte, and the registered samples' models are complete
    assert size < 1024 * 1024
    for model_dir in ("models/churn/2026-11-20", "models/pricing/2026-11-21"):
        assert {path.name for path in (EVENTS / "seed" / model_dir).iterdir()} >= {"MLmodel", "model.skops"}
