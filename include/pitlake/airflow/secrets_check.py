"""``python -m pitlake.airflow.secrets_check``: the compose stack's ``airflow-init`` refuses to start
while a secret in ``.env`` is still the example's ``change-me`` (or empty), or the Fernet key is not a
valid key. One line per problem, naming the variable and how to make a value; exit 1."""

from __future__ import annotations

import sys
from collections.abc import Mapping

from pitlake.core.settings import child_environ

PLACEHOLDER = "change-me"
# Variable inside the container -> the .env entry a person edits, and how to make a value.
SECRETS = {
    "POSTGRES_PASSWORD": ("POSTGRES_PASSWORD", 'python3 -c "import secrets; print(secrets.token_urlsafe(24))"'),
    "AIRFLOW__API_AUTH__JWT_SECRET": (
        "AIRFLOW_JWT_SECRET",
        'python3 -c "import secrets; print(secrets.token_urlsafe(32))"',
    ),
    "AIRFLOW__API__SECRET_KEY": (
        "AIRFLOW_API_SECRET_KEY",
        'python3 -c "import secrets; print(secrets.token_urlsafe(32))"',
    ),
    "_AIRFLOW_WWW_USER_PASSWORD": ("_AIRFLOW_WWW_USER_PASSWORD", "a password of your choice"),
    "REDIS_PASSWORD": ("REDIS_PASSWORD", 'python3 -c "import secrets; print(secrets.token_urlsafe(24))"'),
}
FERNET = ("AIRFLOW__CORE__FERNET_KEY", "AIRFLOW_FERNET_KEY")
FERNET_HINT = 'python3 -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'


def problems(env: Mapping[str, str]) -> list[str]:
    """What is wrong with the secrets in ``env`` (empty when every one is set and valid)."""
    found = []
    for var, (entry, hint) in SECRETS.items():
        value = env.get(var, "").strip()
        if not value or PLACEHOLDER in value:
            found.append(f"{entry} in .env is {'empty' if not value else repr(value)}: set it, e.g. {hint}")
    var, entry = FERNET
    key = env.get(var, "").strip()
    try:
        from cryptography.fernet import Fernet

        Fernet(key.encode())
    except (ValueError, TypeError):
        found.append(
            f"{entry} in .env is not a Fernet key (32 url-safe base64-encoded bytes): make one with {FERNET_HINT}"
        )
    return found


def main() -> int:
    found = problems(child_environ())
    for line in found:
        print(f"airflow-init: refusing to start: {line}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
