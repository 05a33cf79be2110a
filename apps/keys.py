"""`baton keys`: the gateway's API keys per integration, and agent tokens.

    baton keys create NAME --scope messages [--scope agent ...]   prints the key, once
    baton keys list                                               ids, names, scopes, created, revoked
    baton keys revoke KEY_ID                                      the gateway refuses it within its cache time
    baton keys agent-token --integration NAME --agent AGENT_ID    a signed agent token (BATON_GATEWAY_SIGNING_SECRET)

Keys live in the store (BATON_DATABASE_URL, migrated first); the store keeps only their SHA-256.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import UTC, datetime

from baton.apps.gateway.credentials import (
    MAX_TOKEN_SECONDS,
    SCOPE_HELP,
    SCOPES,
    agent_token,
    new_key,
    parse_scopes,
)

NAME_CHARS = 200
DEFAULT_TOKEN_SECONDS = 15 * 60


async def _create(database_url: str, name: str, scopes: list[str]) -> tuple[str, str]:
    from baton.store.api_keys import add_key
    from baton.store.database import create_engine, migrate_async, session_factory

    await migrate_async(database_url)
    engine = create_engine(database_url)
    made = new_key()
    try:
        async with session_factory(engine).begin() as session:
            await add_key(session, made.key_id, name, scopes, made.secret_hash, datetime.now(UTC))
    finally:
        await engine.dispose()
    return made.key_id, made.key


async def _list(database_url: str) -> list[list[str]]:
    from baton.store.api_keys import list_keys
    from baton.store.database import create_engine, migrate_async, session_factory

    await migrate_async(database_url)
    engine = create_engine(database_url)
    try:
        async with session_factory(engine)() as session:
            keys = await list_keys(session)
    finally:
        await engine.dispose()
    return [
        [
            key.key_id,
            key.name,
            ",".join(key.scopes),
            f"{key.created_at:%Y-%m-%d %H:%M}",
            f"{key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "-",
        ]
        for key in keys
    ]


async def _revoke(database_url: str, key_id: str) -> bool:
    from baton.store.api_keys import revoke_key
    from baton.store.database import create_engine, migrate_async, session_factory

    await migrate_async(database_url)
    engine = create_engine(database_url)
    try:
        async with session_factory(engine).begin() as session:
            return await revoke_key(session, key_id, datetime.now(UTC))
    finally:
        await engine.dispose()


def _database_url(args: argparse.Namespace) -> str:
    from baton.settings import get_settings

    return args.database_url or get_settings().database_url


def _run(args: argparse.Namespace) -> int:
    command = args.keys_command
    if command == "create":
        name = args.name.strip()
        if not name or len(name) > NAME_CHARS:
            print(f"baton keys create: NAME: 1 to {NAME_CHARS} characters", file=sys.stderr)
            return 2
        try:
            scopes = parse_scopes(args.scope)
        except ValueError as err:
            print(f"baton keys create: {err}", file=sys.stderr)
            return 2
        key_id, key = asyncio.run(_create(_database_url(args), name, list(scopes)))
        print(f"key id: {key_id}\nname:   {name}\nscopes: {', '.join(scopes)}\nkey:    {key}")
        print("The key is shown this once; the store keeps only its hash. Send it as the X-API-Key header.")
        return 0
    if command == "list":
        rows = asyncio.run(_list(_database_url(args)))
        header = ["key id", "name", "scopes", "created (UTC)", "revoked (UTC)"]
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
        for row in [header, *rows]:
            print("  ".join(value.ljust(width) for value, width in zip(row, widths, strict=True)).rstrip())
        return 0
    if command == "revoke":
        if asyncio.run(_revoke(_database_url(args), args.key_id)):
            print(f"revoked {args.key_id}: gateways refuse it within BATON_GATEWAY_KEY_CACHE_SECONDS")
            return 0
        print(f"baton keys revoke: no active key with id {args.key_id!r}", file=sys.stderr)
        return 1
    return _agent_token(args)


def _agent_token(args: argparse.Namespace) -> int:
    from baton.settings import get_settings

    secret = get_settings().gateway_signing_secret
    if secret is None or not secret.get_secret_value():
        print("baton keys agent-token: set BATON_GATEWAY_SIGNING_SECRET (the gateway's too)", file=sys.stderr)
        return 2
    if not 0 < args.ttl <= MAX_TOKEN_SECONDS:
        print(f"baton keys agent-token: --ttl: 1 to {MAX_TOKEN_SECONDS} seconds", file=sys.stderr)
        return 2
    if not args.agent.strip() or not args.integration.strip():
        print("baton keys agent-token: --agent and --integration must not be empty", file=sys.stderr)
        return 2
    expires = int(time.time()) + args.ttl
    print(agent_token(secret.get_secret_value().encode(), args.integration, args.agent, expires))
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    keys = sub.add_parser(
        "keys",
        help="the gateway's API keys per integration (create, list, revoke) and agent tokens",
        description="Scopes: " + "; ".join(f"{scope}: {SCOPE_HELP[scope]}" for scope in SCOPES) + ".",
    )
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    store_help = "the store (default: BATON_DATABASE_URL)"
    create = keys_sub.add_parser("create", help="make a key for an integration; it is printed once")
    create.add_argument("name", metavar="NAME", help="the integration, e.g. chat-backend or zendesk")
    create.add_argument(
        "--scope", action="append", required=True, help=f"one of {', '.join(SCOPES)}; repeat or comma-separate"
    )
    listing = keys_sub.add_parser("list", help="every key: id, name, scopes, when made and revoked")
    revoke = keys_sub.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("key_id", metavar="KEY_ID")
    token = keys_sub.add_parser("agent-token", help="sign a short-lived token vouching for one agent")
    token.add_argument("--integration", required=True, help="the helpdesk integration that vouches")
    token.add_argument("--agent", required=True, metavar="AGENT_ID")
    token.add_argument(
        "--ttl", type=int, default=DEFAULT_TOKEN_SECONDS, help=f"seconds it is valid (default {DEFAULT_TOKEN_SECONDS})"
    )
    for parser in (create, listing, revoke):
        parser.add_argument("--database-url", default=None, metavar="URL", help=store_help)
    for parser in (create, listing, revoke, token):
        parser.set_defaults(func=_run)
