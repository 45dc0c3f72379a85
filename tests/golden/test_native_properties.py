"""The decoder properties of test_decoder_properties.py, run against the native core (native_core.py):
BSM records and Linux lines.

The same test functions, with the module's `build_documents` / `decode_raw` pointed at native_core; the
strict xfails of the known Python bugs are checked too, so a native fix or a native difference is seen.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.golden import native_core
from tests.golden import test_decoder_properties as props


@pytest.fixture(autouse=True)
def _native_core(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(props, "build_documents", native_core.build_documents)
    monkeypatch.setattr(props, "decode_raw", native_core.decode_raw)
    yield


def test_bsm_records_keep_the_invariants() -> None:
    props.test_bsm_records_keep_the_invariants()


def test_linux_lines_keep_the_invariants() -> None:
    props.test_linux_lines_keep_the_invariants()


def test_an_undecodable_linux_line_is_kept_in_a_document() -> None:
    props.test_an_undecodable_linux_line_is_kept_in_a_document()


@pytest.mark.xfail(strict=True, reason="known gap, reproduced natively (tests/golden/README.md)")
@pytest.mark.parametrize("schema", props.SCHEMAS)
def test_an_undecodable_linux_line_keeps_its_bytes(schema: props.Schema) -> None:
    props.test_an_undecodable_linux_line_keeps_its_bytes(schema)


def test_a_bsm_document_does_not_depend_on_its_neighbours() -> None:
    props.test_a_bsm_document_does_not_depend_on_its_neighbours()


@pytest.mark.parametrize("schema", props.SCHEMAS)
def test_the_checks_see_a_dead_letter(schema: props.Schema) -> None:
    props.test_the_checks_see_a_dead_letter(schema)


@pytest.mark.xfail(strict=True, reason="known gap, reproduced natively (tests/golden/README.md)")
def test_bytes_after_a_bsm_records_end_are_kept() -> None:
    props.test_bytes_after_a_bsm_records_end_are_kept()


@pytest.mark.xfail(strict=True, raises=TypeError, reason="known bug, reproduced natively (tests/golden/README.md)")
@pytest.mark.parametrize(("kind", "payload", "schema"), props.BIG_INTEGERS, ids=["bsm-ecs", "bsm-v1", "linux-ecs"])
def test_integers_beyond_64_bits_in_documents(kind: str, payload: bytes, schema: props.Schema) -> None:
    props.test_integers_beyond_64_bits_in_documents(kind, payload, schema)  # type: ignore[arg-type]


@pytest.mark.xfail(strict=True, raises=TypeError, reason="known bug, reproduced natively (tests/golden/README.md)")
@pytest.mark.parametrize(("kind", "payload"), props.FAR_FUTURE, ids=["linux", "bsm"])
def test_far_future_times_in_raw_output(kind: str, payload: bytes) -> None:
    props.test_far_future_times_in_raw_output(kind, payload)  # type: ignore[arg-type]
