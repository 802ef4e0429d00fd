"""An independent MCP client (the official Python `mcp` SDK) driving `bridle mcp` over stdio.

Driven by tests/tests/mcp_server.rs, which starts anvil and `bridle dev`, grants a session
capped at 100 USDC a day and funds it. Reads a JSON case on stdin:
{bridle, key, session, host, rpc, token, to, trust_file, agent_private_key}
and prints one JSON object: what the tools answered.

Checks here: the tool list; an allowed 60 USDC transfer is mined (receipt status 1); an
over-cap 50 USDC transfer is a tool error naming spend_cap, the rule and the numbers; the
agent's private key appears in no tool result. With `liar` (a lying host's URL) in the
case, a 10 USDC transfer through it, whose signature the liar withholds.
"""

import asyncio
import json
import os
import sys

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

EXPECTED_TOOLS = {
    "session_address",
    "status",
    "send_transaction",
    "sign_typed_data",
    "sign_message",
    "explain_policy",
}


def attr(obj, snake: str, camel: str):
    """SDK 2 names fields in snake_case, SDK 1 in camelCase."""
    return getattr(obj, snake) if hasattr(obj, snake) else getattr(obj, camel)


def text_of(result) -> str:
    return "\n".join(getattr(c, "text", "") for c in result.content)


def dump(result) -> dict:
    return {
        "is_error": bool(attr(result, "is_error", "isError")),
        "text": text_of(result),
        "structured": attr(result, "structured_content", "structuredContent"),
    }


async def main() -> None:
    case = json.load(sys.stdin)
    env = dict(os.environ)
    env["BRIDLE_TRUST_FILE"] = case["trust_file"]
    params = StdioServerParameters(
        command=case["bridle"],
        args=[
            "mcp",
            "--key",
            case["key"],
            "--session",
            case["session"],
            "--host",
            case["host"],
            "--rpc",
            case["rpc"],
        ],
        env=env,
    )
    out: dict = {}
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            out["server"] = attr(init, "server_info", "serverInfo").name
            tools = await session.list_tools()
            names = {t.name for t in tools.tools}
            out["tools"] = sorted(names)
            assert EXPECTED_TOOLS <= names, f"missing tools: {EXPECTED_TOOLS - names}"
            schemas = {t.name: attr(t, "input_schema", "inputSchema") for t in tools.tools}
            assert "to" in schemas["send_transaction"]["properties"], schemas["send_transaction"]

            out["address"] = dump(await session.call_tool("session_address", {}))
            out["status_before"] = dump(await session.call_tool("status", {}))
            out["policy"] = dump(await session.call_tool("explain_policy", {}))

            transfer = "transfer(address,uint256)"
            out["allowed"] = dump(
                await session.call_tool(
                    "send_transaction",
                    {
                        "to": case["token"],
                        "function": transfer,
                        "args": [case["to"], "60000000"],
                        "wait_for_receipt": True,
                    },
                )
            )
            out["over_cap"] = dump(
                await session.call_tool(
                    "send_transaction",
                    {"to": case["token"], "function": transfer, "args": [case["to"], 50000000]},
                )
            )
            # A JSON number beyond 2^64 would arrive as a float and encode a rounded amount.
            out["inexact"] = dump(
                await session.call_tool(
                    "send_transaction",
                    {"to": case["token"], "function": transfer, "args": [case["to"], 123456789012345678901]},
                )
            )
            out["message"] = dump(await session.call_tool("sign_message", {"message": "gm"}))
            out["status_after"] = dump(await session.call_tool("status", {}))

    # The same server through a lying host, which relays a transfer, keeps the enclave's
    # signature and answers spend_cap: the tool error says the enclave signed anyway.
    if case.get("liar"):
        params.args[params.args.index(case["host"])] = case["liar"]
        async with stdio_client(params) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                out["withheld"] = dump(
                    await session.call_tool(
                        "send_transaction",
                        {"to": case["token"], "function": "transfer(address,uint256)", "args": [case["to"], "10000000"]},
                    )
                )

    # The key never reaches the model.
    secret = case["agent_private_key"].lower().removeprefix("0x")
    blob = json.dumps(out).lower()
    out["key_leaked"] = secret in blob
    print(json.dumps(out))


if __name__ == "__main__":
    asyncio.run(main())
