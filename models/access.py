"""Read-only access to a PostgreSQL archive for researchers: a role that reads every table and view, no more.

`grant_read_only` creates (or brings up to date) a login role with
- CONNECT on the archive's database and USAGE on its schema, SELECT on every table and view in it,
- the same SELECT on tables and views created later by the role running it (default privileges: run
  it as the archive's owner, the role that runs `dnm db upgrade` and the crawls),
- no CREATE on the schema, no INSERT/UPDATE/DELETE/TRUNCATE anywhere, no superuser, database or role
  creation, and every transaction read-only by default (`default_transaction_read_only`).
Running it again is harmless and picks up tables added by a migration since.
"""

from __future__ import annotations

import re

from sqlalchemy import Engine, text

ROLE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


class RoleError(ValueError):
    """The role cannot be made as asked (bad name, not PostgreSQL, an existing role with more rights)."""


def _literal(value: str) -> str:
    """A SQL string literal (standard_conforming_strings is on since PostgreSQL 9.1: only ' is special)."""
    return "'" + value.replace("'", "''") + "'"


def grant_read_only(engine: Engine, role: str, password: str | None = None) -> dict[str, str]:
    """Create or update the read-only role `role` on the archive at `engine`; returns what it granted on.

    With `password` the role logs in with it (stored as the server's password_encryption hashes it);
    without, it keeps the password it had, if any (trust, peer or a password set by the DBA).
    """
    if engine.dialect.name != "postgresql":
        raise RoleError(
            "read-only roles are a PostgreSQL feature: a SQLite archive is read-only for whoever can read "
            "the file and not write it, and the query tools open it read-only (docs/research-access.md)"
        )
    if not ROLE_NAME.fullmatch(role):
        raise RoleError(f"role name {role!r}: lowercase letters, digits and _, not starting with a digit")
    quoted = engine.dialect.identifier_preparer.quote(role)
    with engine.begin() as connection:
        database = str(connection.scalar(text("SELECT current_database()")))
        schema = str(connection.scalar(text("SELECT current_schema()")))
        owner = str(connection.scalar(text("SELECT current_user")))
        found = connection.execute(
            text("SELECT rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = :role"),
            {"role": role},
        ).first()
        if found is not None and any(found):
            raise RoleError(f"role {role} exists and may create or administer: not made read-only by this")
        if role == owner:
            raise RoleError(f"role {role} is the one running this (the archive's owner): choose another name")
        verb = "CREATE" if found is None else "ALTER"
        options = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"
        if password is not None:
            # Sent to the server as a literal: it hashes it (SCRAM) before storing. A server logging every
            # statement (log_statement=all) would log it: set the password from psql's \password there.
            options += f" PASSWORD {_literal(password)}"
        connection.execute(text(f"{verb} ROLE {quoted} WITH {options}"))
        connection.execute(text(f"ALTER ROLE {quoted} SET default_transaction_read_only = on"))
        db, sch = (engine.dialect.identifier_preparer.quote(name) for name in (database, schema))
        connection.execute(text(f"GRANT CONNECT ON DATABASE {db} TO {quoted}"))
        connection.execute(text(f"GRANT USAGE ON SCHEMA {sch} TO {quoted}"))
        # Directly granted rights only: PUBLIC's (CREATE on public before PostgreSQL 15) are the DBA's call,
        # and the role's own writes are refused by default_transaction_read_only in any case.
        connection.execute(text(f"REVOKE CREATE ON SCHEMA {sch} FROM {quoted}"))
        connection.execute(text(f"REVOKE ALL ON ALL TABLES IN SCHEMA {sch} FROM {quoted}"))
        connection.execute(text(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {sch} FROM {quoted}"))
        connection.execute(text(f"GRANT SELECT ON ALL TABLES IN SCHEMA {sch} TO {quoted}"))
        connection.execute(
            text(f"ALTER DEFAULT PRIVILEGES IN SCHEMA {sch} GRANT SELECT ON TABLES TO {quoted}")
        )
    return {"database": database, "schema": schema, "owner": owner}
