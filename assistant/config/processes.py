"""Where ``banshi run`` writes the state of the processes it supervises (action servers,
gateway replicas, the load balancer), read back by ``/healthz``."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Dict, Optional

STATUS_FILE = Path("run") / "processes.json"
# The supervisor rewrites the file every half second; older means it is gone.
FRESH_SECONDS = 10.0


def read_status(data_dir: Path, max_age_s: float = FRESH_SECONDS) -> Optional[Dict[str, Any]]:
    """The supervisor's last status if it is fresh (the supervisor runs), else None."""
    path = Path(data_dir) / STATUS_FILE
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(body, dict) or time.time() - float(body.get("updated", 0)) > max_age_s:
        return None
    return body
