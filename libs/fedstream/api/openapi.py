"""The admin API's OpenAPI document, generated from the app and committed as ``schemas/openapi.json`` (for
people and tools outside Python; the running API also serves it at /openapi.json). A unit test fails when
the committed copy is stale. Regenerate with::

    python -m fedstream.api.openapi
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fedstream.api.app import create_app

OPENAPI_FILE = Path(__file__).resolve().parents[3] / "schemas" / "openapi.json"


def document() -> dict[str, Any]:
    return create_app(None).openapi()


def render() -> str:
    return json.dumps(document(), indent=2, ensure_ascii=False) + "\n"


def main() -> None:
    OPENAPI_FILE.write_text(render(), encoding="utf-8")
    print(f"wrote {OPENAPI_FILE}")


if __name__ == "__main__":
    main()
